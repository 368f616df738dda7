//! Resource access rights (RFC 9635 §8), with gnapd's `mcp` type.
//!
//! An `access` array holds rights, each either an object with a REQUIRED
//! `type` (§8) or a reference string known to the AS (§8.1), e.g. `mcp:github`.
//! The common members `actions`, `locations`, `datatypes`, `identifier` and
//! `privileges` are typed; "API designers will use a combination of common
//! fields … as well as fields specific to the API", so members of other types
//! are kept as they came, in [`AccessObject::extra`], and survive a round
//! trip.
//!
//! For `type: "mcp"` gnapd is the API designer, and the object is parsed
//! strictly: only `type`, `identifier` (upstream name), `locations`,
//! `actions` (MCP methods) and `tools` are allowed. A member the gateway
//! would not enforce (`datatypes`, `privileges`, anything unknown) is refused
//! rather than ignored, because ignoring a restriction the client asked for
//! would grant more than it asked.
//!
//! An absent list and an empty list differ: for `mcp`, absent `actions` or
//! `tools` means "all" (design: "absent = all"), so both are `Option`.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap as _, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::limits::{MAX_ACCESS_ITEMS, MAX_EXTRA_MEMBERS};
use super::reader::{self, Path, Reason, RequestError};

/// The `type` of gnapd's MCP access right.
pub const MCP_TYPE: &str = "mcp";

/// One item of an `access` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessRight {
    /// A reference string (§8.1), compared by exact byte match.
    Reference(String),
    /// A described right (§8), boxed: most rights in practice are short
    /// reference strings.
    Object(Box<AccessObject>),
}

/// An access right described as an object (§8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessObject {
    /// `type`: the kind of API; "MUST be compared using an exact byte match".
    /// REQUIRED.
    pub kind: String,
    /// `actions`: what the client will do (for `mcp`: MCP methods).
    pub actions: Option<Vec<String>>,
    /// `locations`: where the RS is (typically URIs).
    pub locations: Option<Vec<String>>,
    /// `datatypes`: the kinds of data (never on `mcp`).
    pub datatypes: Option<Vec<String>>,
    /// `identifier`: one resource at the RS (for `mcp`: the upstream name).
    pub identifier: Option<String>,
    /// `privileges`: levels of privilege (never on `mcp`).
    pub privileges: Option<Vec<String>>,
    /// `tools`: for `mcp` only, the tools `tools/call` may name; absent means
    /// all.
    pub tools: Option<Vec<String>>,
    /// Members specific to a type other than `mcp`, kept as sent.
    pub extra: Map<String, Value>,
}

impl AccessObject {
    /// True for gnapd's MCP access right.
    pub fn is_mcp(&self) -> bool {
        self.kind == MCP_TYPE
    }
}

/// Reads an `access` array (§2.1.1: REQUIRED, "array of objects/strings").
/// An empty array asks for nothing; gnapd refuses it.
pub(crate) fn parse_access_list(
    value: &Value,
    at: &Path<'_>,
) -> Result<Vec<AccessRight>, RequestError> {
    let items = reader::array(value, at, "array of objects/strings", MAX_ACCESS_ITEMS)?;
    if items.is_empty() {
        return Err(RequestError::invalid(at, Reason::Empty));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(parse_access_right(item, &at.index(i))?);
    }
    Ok(out)
}

/// Reads one access right.
pub(crate) fn parse_access_right(
    value: &Value,
    at: &Path<'_>,
) -> Result<AccessRight, RequestError> {
    match value {
        Value::String(_) => Ok(AccessRight::Reference(
            reader::nonempty_string(value, at)?.to_owned(),
        )),
        Value::Object(map) => parse_object(map, at).map(|o| AccessRight::Object(Box::new(o))),
        _ => Err(RequestError::invalid(
            at,
            Reason::WrongType {
                expected: "object or string",
            },
        )),
    }
}

fn parse_object(map: &Map<String, Value>, at: &Path<'_>) -> Result<AccessObject, RequestError> {
    let at_type = at.key("type");
    let kind = reader::nonempty_string(reader::required(map, "type", at)?, &at_type)?.to_owned();
    let mcp = kind == MCP_TYPE;
    let mut out = AccessObject {
        kind,
        ..AccessObject::default()
    };
    for (name, value) in map {
        let at_member = at.key(name);
        match name.as_str() {
            "type" => {}
            "actions" => out.actions = Some(reader::string_list(value, &at_member)?),
            "locations" => out.locations = Some(reader::string_list(value, &at_member)?),
            "identifier" => out.identifier = Some(reader::string(value, &at_member)?.to_owned()),
            "tools" if mcp => out.tools = Some(reader::string_list(value, &at_member)?),
            // Everything else on `mcp`, `datatypes` and `privileges` included.
            _ if mcp => {
                return Err(RequestError::invalid(&at_member, Reason::NotAllowed));
            }
            "datatypes" => out.datatypes = Some(reader::string_list(value, &at_member)?),
            "privileges" => out.privileges = Some(reader::string_list(value, &at_member)?),
            _ => {
                // Shown as they are on the consent page and in the admin's
                // listing, like the members above.
                reader::shown(name, &at_member)?;
                reader::shown_tree(value, &at_member)?;
                reader::bounded_tree(value, &at_member)?;
                if out.extra.len() >= MAX_EXTRA_MEMBERS {
                    return Err(RequestError::invalid(
                        at,
                        Reason::TooMany {
                            max: MAX_EXTRA_MEMBERS,
                        },
                    ));
                }
                out.extra.insert(name.clone(), value.clone());
            }
        }
    }
    Ok(out)
}

impl Serialize for AccessRight {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Reference(name) => serializer.serialize_str(name),
            Self::Object(object) => object.serialize(serializer),
        }
    }
}

impl Serialize for AccessObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", &self.kind)?;
        if let Some(v) = &self.actions {
            map.serialize_entry("actions", v)?;
        }
        if let Some(v) = &self.locations {
            map.serialize_entry("locations", v)?;
        }
        if let Some(v) = &self.datatypes {
            map.serialize_entry("datatypes", v)?;
        }
        if let Some(v) = &self.identifier {
            map.serialize_entry("identifier", v)?;
        }
        if let Some(v) = &self.privileges {
            map.serialize_entry("privileges", v)?;
        }
        if let Some(v) = &self.tools {
            map.serialize_entry("tools", v)?;
        }
        for (name, value) in &self.extra {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AccessRight {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_access_right(&value, &Path::root().key("access")).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::gnap::error::ErrorCode;
    use serde_json::json;

    fn list(value: Value) -> Result<Vec<AccessRight>, RequestError> {
        parse_access_list(&value, &Path::root().key("access"))
    }

    #[test]
    fn section_8_mixed_objects_and_references_round_trip() {
        // §8.1, the example mixing objects and reference strings.
        let wire = json!([
            {
                "type": "photo-api",
                "actions": ["read", "write", "delete"],
                "locations": ["https://server.example.net/", "https://resource.local/other"],
                "datatypes": ["metadata", "images"]
            },
            "read",
            "dolphin-metadata",
            {
                "type": "financial-transaction",
                "actions": ["withdraw"],
                "identifier": "account-14-32-32-3",
                "currency": "USD"
            },
            "some other thing"
        ]);
        let rights = list(wire.clone()).unwrap();
        assert_eq!(rights.len(), 5);
        assert_eq!(rights[1], AccessRight::Reference("read".into()));
        let AccessRight::Object(financial) = &rights[3] else {
            panic!("object expected");
        };
        assert_eq!(financial.identifier.as_deref(), Some("account-14-32-32-3"));
        assert_eq!(financial.extra["currency"], "USD");
        assert_eq!(serde_json::to_value(&rights).unwrap(), wire);
    }

    #[test]
    fn section_8_api_specific_members_are_kept() {
        // §8's `geolocation` example; the draft writes `{ lat: -32.364, … }`
        // with unquoted names, which is not JSON, so the names are quoted here.
        let wire = json!([{
            "type": "photo-api",
            "actions": ["read", "write"],
            "locations": ["https://server.example.net/", "https://resource.local/other"],
            "datatypes": ["metadata", "images"],
            "geolocation": [
                { "lat": -32.364, "lng": 153.207 },
                { "lat": -35.364, "lng": 158.207 }
            ]
        }]);
        let rights = list(wire.clone()).unwrap();
        assert_eq!(serde_json::to_value(&rights).unwrap(), wire);
    }

    #[test]
    fn an_object_without_type_is_invalid_request_naming_type() {
        let err = list(json!(["ok", {"actions": ["read"]}])).unwrap_err();
        assert_eq!(err.field(), "access[1].type");
        assert_eq!(err.reason(), Reason::Missing);
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn items_of_other_types_and_bad_members_are_named() {
        let err = list(json!([1])).unwrap_err();
        assert_eq!(err.field(), "access[0]");
        let err = list(json!([{"type": "x", "actions": "read"}])).unwrap_err();
        assert_eq!(err.field(), "access[0].actions");
        let err = list(json!([{"type": "x", "locations": [1]}])).unwrap_err();
        assert_eq!(err.field(), "access[0].locations[0]");
        let err = list(json!([{"type": 5}])).unwrap_err();
        assert_eq!(err.field(), "access[0].type");
        let err = list(json!([""])).unwrap_err();
        assert_eq!((err.field(), err.reason()), ("access[0]", Reason::Empty));
    }

    #[test]
    fn an_empty_or_oversized_access_array_is_refused() {
        assert_eq!(list(json!([])).unwrap_err().reason(), Reason::Empty);
        let many: Vec<String> = (0..=MAX_ACCESS_ITEMS).map(|i| format!("r{i}")).collect();
        assert_eq!(
            list(json!(many)).unwrap_err().reason(),
            Reason::TooMany {
                max: MAX_ACCESS_ITEMS
            }
        );
    }

    #[test]
    fn mcp_rights_parse_tools_and_keep_absent_lists_absent() {
        let rights = list(json!([
            {
                "type": "mcp",
                "identifier": "github",
                "locations": ["https://gw.example/mcp/github"],
                "actions": ["tools/list", "tools/call"],
                "tools": ["search_issues"]
            },
            {"type": "mcp", "identifier": "fs"},
            "mcp:linear"
        ]))
        .unwrap();
        let AccessRight::Object(github) = &rights[0] else {
            panic!("object expected");
        };
        assert!(github.is_mcp());
        assert_eq!(
            github.tools.as_deref(),
            Some(&["search_issues".to_owned()][..])
        );
        assert!(github.extra.is_empty());
        let AccessRight::Object(fs) = &rights[1] else {
            panic!("object expected");
        };
        assert_eq!((fs.actions.as_ref(), fs.tools.as_ref()), (None, None));
        // An empty list stays empty: it is not "all".
        let rights = list(json!([{"type": "mcp", "identifier": "fs", "tools": []}])).unwrap();
        let AccessRight::Object(none) = &rights[0] else {
            panic!("object expected");
        };
        assert_eq!(none.tools.as_deref(), Some(&[][..]));
    }

    #[test]
    fn mcp_rights_refuse_members_the_gateway_would_not_enforce() {
        for member in ["datatypes", "privileges", "resources", "tool"] {
            let mut object = json!({"type": "mcp", "identifier": "github"});
            object[member] = json!(["x"]);
            let err = list(json!([object])).unwrap_err();
            assert_eq!(err.field(), format!("access[0].{member}"));
            assert_eq!(err.reason(), Reason::NotAllowed);
        }
        let err = list(json!([{"type": "mcp", "tools": "search"}])).unwrap_err();
        assert_eq!(err.field(), "access[0].tools");
    }

    #[test]
    fn tools_on_another_type_is_that_types_own_member() {
        let rights = list(json!([{"type": "other", "tools": {"any": "shape"}}])).unwrap();
        let AccessRight::Object(other) = &rights[0] else {
            panic!("object expected");
        };
        assert_eq!(other.tools, None);
        assert_eq!(other.extra["tools"], json!({"any": "shape"}));
    }

    #[test]
    fn type_is_compared_exactly() {
        let rights = list(json!([{"type": "MCP", "datatypes": ["x"]}])).unwrap();
        let AccessRight::Object(upper) = &rights[0] else {
            panic!("object expected");
        };
        assert!(!upper.is_mcp());
    }

    #[test]
    fn an_access_objects_own_numbers_read_back_as_the_same_number() {
        // Found by the `grant_request` fuzz target: an 82-digit integer read
        // as 1.6666666666666669e81, written as that, read back one ULP off.
        let wire = format!(
            r#"[{{"type":"photo-api","note":{{"x":[1{}]}}}}]"#,
            "6".repeat(81)
        );
        let value: Value = serde_json::from_str(&wire).unwrap();
        let rights = list(value).unwrap();
        let written = serde_json::to_string(&rights).unwrap();
        let again = list(serde_json::from_str(&written).unwrap()).unwrap();
        assert_eq!(again, rights, "{written}");
        assert_eq!(serde_json::to_string(&again).unwrap(), written);
    }

    #[test]
    fn an_access_objects_own_strings_are_bounded() {
        let long = "x".repeat(crate::proto::gnap::limits::MAX_STRING_LEN + 1);
        let err = list(json!([{"type": "photo-api", "note": {"x": [long]}}])).unwrap_err();
        assert_eq!(err.field(), "access[0].note.x[0]");
    }
}
