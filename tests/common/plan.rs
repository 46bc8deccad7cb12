//! Reading `EXPLAIN (FORMAT JSON)` output in plan tests.

use serde_json::Value;

/// Every plan node, depth first.
fn nodes(plan: &Value, out: &mut Vec<Value>) {
    out.push(plan.clone());
    if let Some(children) = plan.get("Plans").and_then(Value::as_array) {
        for child in children {
            nodes(child, out);
        }
    }
}

/// The nodes of one `EXPLAIN (FORMAT JSON)` document, depth first.
pub fn flat(json: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(json).unwrap();
    let mut out = Vec::new();
    nodes(&doc[0]["Plan"], &mut out);
    out
}

/// A text field of a node ("" when absent).
pub fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}
