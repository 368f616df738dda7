//! Whether a token's access rights allow an MCP message, and what of a
//! `tools/list` result the token may see.
//!
//! The `mcp` access right (see `proto::gnap::access`) names an upstream
//! (`identifier`), the MCP methods allowed (`actions`, absent = all) and the
//! tools `tools/call` may name (`tools`, absent = all). A reference string
//! `mcp:NAME` is full access to upstream NAME. Lifecycle messages
//! (`initialize`, `ping`, notifications, responses to server requests) pass
//! on any token that reaches the upstream at all: without them no session
//! can start or stay alive.

use serde_json::Value;

use super::fold::reads_as;
use super::jsonrpc::Message;
use crate::proto::gnap::AccessRight;

/// What a token may do at one upstream: the union of its rights that name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamGrant {
    /// Allowed methods; `None` = all.
    methods: Option<Vec<String>>,
    /// Allowed tools for `tools/call`; `None` = all.
    tools: Option<Vec<String>>,
}

/// Why a message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The token has no right for this upstream.
    #[error("the token grants no access to upstream `{0}`")]
    Upstream(String),
    /// The method is not among the granted actions.
    #[error("method `{0}` is not granted")]
    Method(String),
    /// `tools/call` for a tool not granted (or without a name).
    #[error("tool `{0}` is not granted")]
    Tool(String),
}

fn union(into: &mut Option<Vec<String>>, from: Option<&Vec<String>>) {
    match (into.as_mut(), from) {
        // Already unrestricted, or this right is unrestricted.
        (None, _) => {}
        (Some(_), None) => *into = None,
        (Some(list), Some(more)) => {
            for item in more {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        }
    }
}

impl UpstreamGrant {
    /// The grant `rights` give at upstream `name`, or `None` if they give none.
    pub fn for_upstream(rights: &[AccessRight], name: &str) -> Option<Self> {
        let mut grant: Option<Self> = None;
        for right in rights {
            let (methods, tools) = match right {
                AccessRight::Reference(r) if r.strip_prefix("mcp:") == Some(name) => (None, None),
                AccessRight::Object(o) if o.is_mcp() && o.identifier.as_deref() == Some(name) => {
                    (o.actions.as_ref(), o.tools.as_ref())
                }
                _ => continue,
            };
            match grant.as_mut() {
                None => {
                    grant = Some(Self {
                        methods: methods.cloned(),
                        tools: tools.cloned(),
                    });
                }
                Some(g) => {
                    union(&mut g.methods, methods);
                    union(&mut g.tools, tools);
                }
            }
        }
        grant
    }

    /// Decides one message.
    pub fn allows(&self, message: &Message) -> Result<(), Denied> {
        let (method, target) = match message {
            Message::Response => return Ok(()),
            // MCP's notifications all live under `notifications/` and name
            // no tool. Any other method sent without an id is no MCP
            // notification; a server that ran it anyway must not run what
            // the token does not allow, so it meets the request rules (and
            // a `tools/call` of that kind names no tool it could be allowed).
            Message::Notification { method } if method.starts_with("notifications/") => {
                return Ok(());
            }
            Message::Notification { method } => (method, &None),
            Message::Request { method, target } => (method, target),
        };
        if matches!(method.as_str(), "initialize" | "ping") {
            return Ok(());
        }
        if self.methods.as_ref().is_some_and(|m| !m.contains(method)) {
            return Err(Denied::Method(method.clone()));
        }
        if method == "tools/call" {
            let name = target.as_deref().unwrap_or("");
            if !self.tool_allowed(name) {
                return Err(Denied::Tool(name.to_owned()));
            }
        }
        Ok(())
    }

    /// Whether some tools are withheld, i.e. whether a tool list must be
    /// filtered at all.
    pub fn limits_tools(&self) -> bool {
        self.tools.is_some()
    }

    fn tool_allowed(&self, name: &str) -> bool {
        !name.is_empty()
            && self
                .tools
                .as_ref()
                .is_none_or(|t| t.iter().any(|x| x == name))
    }

    /// Removes the tools the token may not call from a `tools/list` result
    /// (`{"result": {"tools": [{"name": ...}, ...]}}`), in place. A client
    /// is not shown what it cannot use; a `tools` member that is not a list
    /// cannot be filtered and is emptied.
    pub fn filter_tools_list(&self, response: &mut Value) {
        if self.tools.is_none() {
            return;
        }
        // A batch of answers (no MCP version since 2025-06-18 sends one,
        // but an upstream might): each answer in it.
        if let Some(answers) = response.as_array_mut() {
            for answer in answers {
                self.filter_tools_list(answer);
            }
            return;
        }
        // A member a case-blind or folding client reads as `result`,
        // `tools` or `name` (`Result`, `NAME` ...) would show it another
        // list or another name than the one filtered: it goes.
        let Some(result) = drop_read_as(response, "result").get_mut("result") else {
            return;
        };
        let Some(tools) = drop_read_as(result, "tools").get_mut("tools") else {
            return;
        };
        match tools.as_array_mut() {
            Some(list) => list.retain(|tool| {
                tool.as_object()
                    .is_some_and(|t| !t.keys().any(|k| reads_as(k, "name")))
                    && tool
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| self.tool_allowed(n))
            }),
            None => *tools = Value::Array(Vec::new()),
        }
    }
}

/// `value`, with the members some decoder reads as `known` (but that are
/// not `known` itself) removed when it is an object.
fn drop_read_as<'v>(value: &'v mut Value, known: &str) -> &'v mut Value {
    if let Some(map) = value.as_object_mut() {
        map.retain(|name, _| !reads_as(name, known));
    }
    value
}

/// Whether a JSON answer carries a tool list (a `tools` member in a
/// `result` member, in the answer or in any answer of a batch), read
/// without building values: every answer to a token whose tools are
/// limited is looked at, and most carry none. `None` for a body that is
/// not JSON, which cannot be filtered.
pub fn carries_tool_list(body: &[u8]) -> Option<bool> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = Find::Answer.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(found)
}

/// What [`carries_tool_list`] looks for at one level of the answer.
#[derive(Clone, Copy)]
enum Find {
    /// An answer (or a batch of them): its `result` members.
    Answer,
    /// A `result`: its `tools` members.
    Result,
}

impl<'de> serde::de::DeserializeSeed<'de> for Find {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Find {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<bool, A::Error> {
        use super::jsonrpc::StrOrNot;
        use serde::de::IgnoredAny;
        let mut found = false;
        // Every member is looked at: a `result` given twice counts wherever
        // it carries tools.
        while let Some(StrOrNot(key)) = a.next_key()? {
            // Names some decoder reads as `result` or `tools` count too:
            // such an answer is rewritten without them.
            let is = |known: &str| {
                key.as_deref()
                    .is_some_and(|k| k == known || reads_as(k, known))
            };
            match self {
                Self::Answer if is("result") => found |= a.next_value_seed(Self::Result)?,
                Self::Result if is("tools") => {
                    a.next_value::<IgnoredAny>()?;
                    found = true;
                }
                _ => {
                    a.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<bool, A::Error> {
        let mut found = false;
        match self {
            Self::Answer => {
                while let Some(one) = a.next_element_seed(Self::Answer)? {
                    found |= one;
                }
            }
            Self::Result => while a.next_element::<serde::de::IgnoredAny>()?.is_some() {},
        }
        Ok(found)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Decides a message against the token's rights for upstream `name`.
pub fn decide(
    rights: &[AccessRight],
    upstream: &str,
    message: &Message,
) -> Result<UpstreamGrant, Denied> {
    let grant = UpstreamGrant::for_upstream(rights, upstream)
        .ok_or_else(|| Denied::Upstream(upstream.to_owned()))?;
    grant.allows(message)?;
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mcp::jsonrpc::parse;
    use serde_json::json;

    fn rights(value: Value) -> Vec<AccessRight> {
        serde_json::from_value(value).unwrap()
    }

    fn call(tool: &str) -> Message {
        parse(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    fn request(method: &str) -> Message {
        parse(
            json!({"jsonrpc": "2.0", "id": 1, "method": method})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn a_reference_string_is_full_access_to_its_upstream_only() {
        let r = rights(json!(["mcp:github"]));
        assert!(decide(&r, "github", &call("anything")).is_ok());
        assert!(decide(&r, "github", &request("resources/list")).is_ok());
        assert_eq!(
            decide(&r, "slack", &call("x")),
            Err(Denied::Upstream("slack".into()))
        );
    }

    #[test]
    fn actions_and_tools_restrict_methods_and_calls() {
        let r = rights(
            json!([{"type": "mcp", "identifier": "github", "actions": ["tools/list", "tools/call"], "tools": ["search_issues"]}]),
        );
        assert!(decide(&r, "github", &call("search_issues")).is_ok());
        assert_eq!(
            decide(&r, "github", &call("delete_repo")),
            Err(Denied::Tool("delete_repo".into()))
        );
        assert_eq!(
            decide(&r, "github", &request("resources/read")),
            Err(Denied::Method("resources/read".into()))
        );
        assert_eq!(
            decide(&r, "github", &call("")),
            Err(Denied::Tool(String::new()))
        );
    }

    #[test]
    fn lifecycle_messages_pass_on_any_grant_for_the_upstream() {
        let r = rights(
            json!([{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": []}]),
        );
        for m in [request("initialize"), request("ping")] {
            assert!(decide(&r, "github", &m).is_ok());
        }
        let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(decide(&r, "github", &n).is_ok());
        assert!(decide(&r, "other", &request("initialize")).is_err());
    }

    #[test]
    fn a_method_sent_as_a_notification_outside_the_notifications_namespace_meets_the_request_rules()
    {
        let r = rights(
            json!([{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["a"]}]),
        );
        let notify = |body: &[u8]| parse(body).unwrap();
        // A tool call without an id names no tool that could be granted.
        for body in [
            &br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"b"}}"#[..],
            br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a"}}"#,
        ] {
            assert!(matches!(
                decide(&r, "github", &notify(body)),
                Err(Denied::Tool(_))
            ));
        }
        // A method the token lacks is refused as a request would be.
        assert!(matches!(
            decide(
                &r,
                "github",
                &notify(br#"{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"x"}}"#)
            ),
            Err(Denied::Method(_))
        ));
        // The lifecycle ones still pass.
        for body in [
            &br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#[..],
            br#"{"jsonrpc":"2.0","method":"ping"}"#,
        ] {
            assert!(decide(&r, "github", &notify(body)).is_ok());
        }
    }

    #[test]
    fn several_rights_for_one_upstream_add_up() {
        let r = rights(json!([
            {"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["a"]},
            {"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["b"]}
        ]));
        assert!(decide(&r, "github", &call("a")).is_ok());
        assert!(decide(&r, "github", &call("b")).is_ok());
        assert!(decide(&r, "github", &call("c")).is_err());
    }

    #[test]
    fn tools_list_results_show_only_granted_tools() {
        let r =
            rights(json!([{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}]));
        let grant = UpstreamGrant::for_upstream(&r, "github").unwrap();
        let mut response = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [
            {"name": "search_issues", "inputSchema": {}},
            {"name": "delete_repo", "inputSchema": {}},
            {"inputSchema": {}}
        ]}});
        grant.filter_tools_list(&mut response);
        assert_eq!(
            response["result"]["tools"],
            json!([{"name": "search_issues", "inputSchema": {}}])
        );
        // Tools in some other shape than a list are not shown at all.
        let mut odd = json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": {"delete_repo": {}}}});
        grant.filter_tools_list(&mut odd);
        assert_eq!(odd["result"]["tools"], json!([]));
        // Each answer of a batch is filtered.
        let mut batch = json!([{"jsonrpc": "2.0", "id": 4, "result": {"tools": [
            {"name": "delete_repo"}, {"name": "search_issues"}]}}, {"jsonrpc": "2.0", "id": 5, "result": {}}]);
        grant.filter_tools_list(&mut batch);
        assert_eq!(
            batch[0]["result"]["tools"],
            json!([{"name": "search_issues"}])
        );
    }

    #[test]
    fn a_tool_list_a_case_blind_client_reads_under_another_name_is_filtered_too() {
        // Found by the `sse_filter` fuzz target: `Result`, `TOOLS` or a
        // second `Name` reach a client that matches names as Go does, and
        // showed it the withheld tool.
        let r =
            rights(json!([{"type": "mcp", "identifier": "github", "tools": ["search_issues"]}]));
        let grant = UpstreamGrant::for_upstream(&r, "github").unwrap();
        let withheld = json!([{"name": "delete_repo"}]);
        for answer in [
            json!({"jsonrpc": "2.0", "id": 1, "Result": {"tools": withheld}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": []}, "RESULT": {"tools": withheld}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"Tools": withheld}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [], "tool\u{17f}": withheld}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "search_issues", "Name": "delete_repo"}]}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "search_issues", "name\u{0}": "delete_repo"}]}}),
        ] {
            let body = answer.to_string();
            assert_eq!(carries_tool_list(body.as_bytes()), Some(true), "{body}");
            let mut filtered = answer.clone();
            grant.filter_tools_list(&mut filtered);
            assert!(!filtered.to_string().contains("delete_repo"), "{filtered}");
        }
        // Other members keep their names.
        let mut answer = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
            {"name": "search_issues", "Title": "Search", "title": "search"}], "nextCursor": "c"}});
        let before = answer.clone();
        grant.filter_tools_list(&mut answer);
        assert_eq!(answer, before);
    }

    #[test]
    fn answers_carrying_a_tool_list_are_recognized_without_reading_them_whole() {
        for yes in [
            &br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#[..],
            br#"{"result":{"nextCursor":"c","tools":{"x":1}}}"#,
            br#"{"result":{"tools":null}}"#,
            br#"{"result":{},"result":{"tools":[]}}"#,
            br#"{"result":{"tools":[]},"result":{}}"#,
            br#"[{"id":1,"result":{}},{"id":2,"result":{"tools":[]}}]"#,
        ] {
            assert_eq!(
                carries_tool_list(yes),
                Some(true),
                "{}",
                String::from_utf8_lossy(yes)
            );
        }
        for no in [
            &br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"tools"}]}}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","data":{"tools":[]}}}"#,
            br#"{"tools":[]}"#,
            br#"{"result":[{"tools":[]}]}"#,
            br#"{"result":{"structuredContent":{"tools":[]}}}"#,
            br#""result""#,
            b"5",
        ] {
            assert_eq!(
                carries_tool_list(no),
                Some(false),
                "{}",
                String::from_utf8_lossy(no)
            );
        }
        for bad in [&b""[..], b"{", br#"{"result":{"tools":[]}} x"#, b"\xFF"] {
            assert_eq!(carries_tool_list(bad), None);
        }
    }
}
