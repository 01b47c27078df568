//! Reading a node's attributes: the JSON form Strider's ops deserialize from (so attribute names and
//! defaults stay declared once, on the ops), and typed reads for the attributes a translation handles
//! itself.

use serde_json::{Map, Value as Json};
use strider_ir::Op;

use crate::error::{Error, Result};
use crate::proto::{AttributeProto, AttributeType, NodeProto};

/// Attributes of older opsets that carry no meaning for inference (`consumed_inputs` before opset 6,
/// the legacy `broadcast` flag of opset-6 arithmetic, whose numpy-style reading is Strider's).
const IGNORED: &[&str] = &["consumed_inputs", "broadcast"];

/// Which attribute field is in use (files older than IR 2 have no `type`).
fn kind(a: &AttributeProto) -> AttributeType {
    match a.r#type() {
        AttributeType::Undefined if a.f.is_some() => AttributeType::Float,
        AttributeType::Undefined if a.i.is_some() => AttributeType::Int,
        AttributeType::Undefined if a.s.is_some() => AttributeType::String,
        AttributeType::Undefined if a.t.is_some() => AttributeType::Tensor,
        AttributeType::Undefined if !a.floats.is_empty() => AttributeType::Floats,
        AttributeType::Undefined if !a.ints.is_empty() => AttributeType::Ints,
        other => other,
    }
}

/// A node's scalar and list attributes as JSON, the form Strider's ops deserialize from.
pub(super) fn attributes(node: &NodeProto, name: &str) -> Result<Map<String, Json>> {
    let mut map = Map::new();
    for a in node.attribute.iter().filter(|a| !IGNORED.contains(&a.name()) && !a.name().is_empty()) {
        let float = |f: f32| serde_json::Number::from_f64(f64::from(f)).map_or(Json::Null, Json::Number);
        let value = match kind(a) {
            AttributeType::Float => float(a.f()),
            AttributeType::Int => Json::from(a.i()),
            AttributeType::String => Json::from(String::from_utf8_lossy(a.s()).into_owned()),
            AttributeType::Floats => Json::Array(a.floats.iter().map(|&f| float(f)).collect()),
            AttributeType::Ints => Json::Array(a.ints.iter().map(|&i| Json::from(i)).collect()),
            // Only Constant reads a tensor attribute, from the node itself.
            AttributeType::Tensor if node.op_type() == "Constant" => continue,
            other => {
                return Err(Error::node(
                    name,
                    node.op_type(),
                    format!("attribute `{}` is of type {other:?}, which Strider does not read", a.name()),
                ));
            }
        };
        map.insert(a.name().to_string(), value);
    }
    Ok(map)
}

/// The Strider op of this name from JSON attributes, through the op's serde form.
pub(super) fn op_from(op_type: &str, attrs: Map<String, Json>, node: &str) -> Result<Op> {
    if let Ok(op) = serde_json::from_value::<Op>(Json::String(op_type.to_string())) {
        return match attrs.keys().next() {
            Some(extra) => Err(Error::node(node, op_type, format!("attribute `{extra}` is not supported"))),
            None => Ok(op),
        };
    }
    let mut wrapped = Map::new();
    wrapped.insert(op_type.to_string(), Json::Object(attrs));
    serde_json::from_value(Json::Object(wrapped)).map_err(|e| Error::node(node, op_type, format!("attributes: {e}")))
}

/// Attributes a translation reads itself: removed from the map as they are read.
pub(super) struct Taken<'m> {
    pub(super) map: &'m mut Map<String, Json>,
    pub(super) node: &'m str,
    pub(super) op_type: &'m str,
}

impl Taken<'_> {
    pub(super) fn error(&self, problem: String) -> Error {
        Error::node(self.node, self.op_type, problem)
    }
    pub(super) fn int(&mut self, key: &str) -> Result<Option<i64>> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| self.error(format!("attribute `{key}` must be an integer"))),
        }
    }
    pub(super) fn ints(&mut self, key: &str) -> Result<Option<Vec<i64>>> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Json::Array(items)) => items
                .iter()
                .map(|v| v.as_i64().ok_or_else(|| self.error(format!("attribute `{key}` must be integers"))))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(self.error(format!("attribute `{key}` must be a list of integers"))),
        }
    }
    pub(super) fn floats(&mut self, key: &str) -> Result<Option<Vec<f32>>> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Json::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_f64().map(|f| f as f32).ok_or_else(|| self.error(format!("attribute `{key}` must be floats")))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(self.error(format!("attribute `{key}` must be a list of floats"))),
        }
    }
    pub(super) fn float(&mut self, key: &str) -> Result<Option<f32>> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|f| Some(f as f32))
                .ok_or_else(|| self.error(format!("attribute `{key}` must be a float"))),
        }
    }
    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(format!("attribute `{key}` must be a string"))),
        }
    }
    /// An attribute that must hold `allowed` (its only supported value) when present.
    pub(super) fn only(&mut self, key: &str, allowed: i64, why: &str) -> Result<()> {
        match self.int(key)? {
            Some(v) if v != allowed => Err(self.error(format!("attribute `{key}` = {v}: {why}"))),
            _ => Ok(()),
        }
    }
    /// Fails on attributes nobody read.
    pub(super) fn done(self) -> Result<()> {
        match self.map.keys().next() {
            Some(extra) => Err(self.error(format!("attribute `{extra}` is not supported"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto { op_type: Some("Conv".into()), attribute, ..Default::default() }
    }

    #[test]
    fn untyped_attributes_of_old_files_are_read_by_their_field() {
        let untyped = |name: &str| AttributeProto { name: Some(name.into()), ..Default::default() };
        let attrs = vec![
            AttributeProto { i: Some(0), ..untyped("group") },
            AttributeProto { ints: vec![2, 2], ..untyped("strides") },
            AttributeProto { s: Some(b"VALID".to_vec()), ..untyped("auto_pad") },
            AttributeProto { i: Some(1), ..untyped("consumed_inputs") },
        ];
        let map = attributes(&node(attrs), "c").unwrap();
        assert_eq!(Json::Object(map.clone()), serde_json::json!({"group": 0, "strides": [2, 2], "auto_pad": "VALID"}));
        let Op::Conv(conv) = op_from("Conv", map, "c").unwrap() else { panic!() };
        assert_eq!((conv.group, conv.strides), (0, vec![2, 2]));
    }

    #[test]
    fn unit_ops_refuse_attributes_and_typed_reads_check_types() {
        assert_eq!(op_from("Relu", Map::new(), "r").unwrap(), Op::Relu);
        let mut extra = Map::new();
        extra.insert("alpha".into(), Json::from(1));
        assert_eq!(
            op_from("Relu", extra.clone(), "r").unwrap_err().to_string(),
            "node `r` (Relu): attribute `alpha` is not supported"
        );
        let mut taken = Taken { map: &mut extra, node: "r", op_type: "Relu" };
        assert!(taken.string("alpha").is_err());
        let graph = AttributeProto {
            name: Some("then_branch".into()),
            r#type: Some(AttributeType::Graph as i32),
            ..Default::default()
        };
        let err = attributes(&node(vec![graph]), "c").unwrap_err().to_string();
        assert_eq!(err, "node `c` (Conv): attribute `then_branch` is of type Graph, which Strider does not read");
    }
}
