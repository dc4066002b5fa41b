//! Resolving `--fetch NODE,...` for the subcommands that compile part of a model.

use flumen::{GraphDef, GraphError, NodeId, Result};

/// The nodes `fetch` names, or, when it is empty, every node no other node consumes (by data
/// or control edge). `command` names the subcommand in errors.
pub fn resolve_fetches(def: &GraphDef, fetch: &[String], command: &str) -> Result<Vec<NodeId>> {
    let ids: Vec<NodeId> = if fetch.is_empty() {
        let consumers = def.consumers();
        let mut used = vec![false; def.len()];
        for n in def.nodes() {
            for c in &n.control_inputs {
                used[c.0] = true;
            }
        }
        def.iter()
            .filter(|(id, _)| consumers[id.0].is_empty() && !used[id.0])
            .map(|(id, _)| id)
            .collect()
    } else {
        fetch
            .iter()
            .map(|name| {
                def.find(name.trim()).ok_or_else(|| {
                    GraphError::invalid(format!(
                        "flumen {command}: --fetch `{name}`: the model has no node of that name"
                    ))
                })
            })
            .collect::<Result<_>>()?
    };
    if ids.is_empty() {
        return Err(GraphError::invalid(format!(
            "flumen {command}: the model has no nodes to fetch"
        )));
    }
    Ok(ids)
}
