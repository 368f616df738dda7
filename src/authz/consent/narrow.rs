//! Narrowing before approval: the rights and tools a person left ticked,
//! never more than was requested.

use std::collections::HashSet;

use crate::proto::gnap::AccessRight;

/// What a person left ticked: form values of rights and tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `TOKEN.RIGHT` values.
    pub rights: HashSet<String>,
    /// `TOKEN.RIGHT.TOOL` values.
    pub tools: HashSet<String>,
}

/// The tools a person chooses one by one: those an `mcp` right lists.
pub(super) fn tool_choices(right: &AccessRight) -> Option<&[String]> {
    match right {
        AccessRight::Object(o) if o.is_mcp() => o.tools.as_deref().filter(|t| !t.is_empty()),
        _ => None,
    }
}

/// The approved rights, per requested token: each right ticked, and of an
/// `mcp` right with tools, the tools ticked (the right goes when none is).
/// Only requested rights can come out: the selection picks, never adds.
pub(crate) fn narrow(
    requested: &[Vec<AccessRight>],
    selection: &Selection,
) -> Vec<Vec<AccessRight>> {
    requested
        .iter()
        .enumerate()
        .map(|(t, rights)| {
            rights
                .iter()
                .enumerate()
                .filter_map(|(r, right)| match (tool_choices(right), right) {
                    (Some(tools), AccessRight::Object(o)) => {
                        let kept: Vec<String> = tools
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| selection.tools.contains(&format!("{t}.{r}.{k}")))
                            .map(|(_, name)| name.clone())
                            .collect();
                        if kept.is_empty() {
                            return None;
                        }
                        let mut narrowed = o.clone();
                        narrowed.tools = Some(kept);
                        Some(AccessRight::Object(narrowed))
                    }
                    _ => selection
                        .rights
                        .contains(&format!("{t}.{r}"))
                        .then(|| right.clone()),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_keeps_only_ticked_rights_and_tools() {
        let requested: Vec<Vec<AccessRight>> = vec![
            serde_json::from_value(serde_json::json!([
                "mcp:github",
                {"type": "mcp", "identifier": "slack", "actions": ["tools/call"], "tools": ["post", "read", "delete"]},
                {"type": "mcp", "identifier": "jira", "tools": ["a"]}
            ]))
            .unwrap(),
        ];
        let selection = Selection {
            rights: ["0.0".to_owned(), "9.9".to_owned()].into(),
            tools: ["0.1.0".to_owned(), "0.1.1".to_owned(), "0.1.7".to_owned()].into(),
        };
        let narrowed = narrow(&requested, &selection);
        assert_eq!(
            serde_json::to_value(&narrowed).unwrap(),
            serde_json::json!([[
                "mcp:github",
                {"type": "mcp", "identifier": "slack", "actions": ["tools/call"], "tools": ["post", "read"]}
            ]])
        );
        assert!(narrow(&requested, &Selection::default())[0].is_empty());
    }
}
