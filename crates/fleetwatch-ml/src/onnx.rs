//! Export of a native autoencoder to ONNX (opset 17): the stored preprocessing and the
//! network in one graph, so any ONNX runtime scores exactly what fleetwatch scores.
//!
//! Graph: input `features` `float[N, F]` (the bundle's features, in order, raw units) →
//! missing (NaN, and a negative value in a `log` column) filled → `log1p` /
//! `signed_log1p` where the manifest says → `(x − mean) / scale` → dense layers (`MatMul`,
//! `Add`, activation) → output `score` `float[N]` = mean per-feature squared reconstruction
//! error, higher = more anomalous (the manifest's output spec). Only numeric features
//! export: a one-hot column would need string inputs.
//!
//! The protobuf is written here (ONNX's `ModelProto` subset a graph of plain ops needs):
//! a few field encoders are all it takes, no code generator or protobuf crate.

use crate::bundle::Bundle;
use crate::error::{MlError, MlResult};
use crate::model::Model;
use crate::nn::Activation;
use crate::preprocess::{ColumnTransform, Transform};

/// The opset the graph uses (`ReduceMean` still takes `axes` as an attribute).
pub const OPSET: i64 = 17;
/// ONNX IR version 8 (opset 17's).
const IR_VERSION: i64 = 8;

const FLOAT: i64 = 1;
const BOOL: i64 = 9;

/// Protobuf field writers.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }
    fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }
    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(&mut self, field: u32, m: &Msg) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// A graph under construction.
#[derive(Default)]
struct Graph {
    nodes: Vec<Msg>,
    initializers: Vec<Msg>,
    next: usize,
}

impl Graph {
    fn name(&mut self, stem: &str) -> String {
        self.next += 1;
        format!("{stem}_{}", self.next)
    }

    /// A constant tensor (float or bool) as an initializer; returns its name.
    fn constant(&mut self, stem: &str, dims: &[i64], data_type: i64, raw: Vec<u8>) -> String {
        let name = self.name(stem);
        let mut t = Msg::default();
        for &d in dims {
            t.int(1, d);
        }
        t.int(2, data_type).str(8, &name).bytes(9, &raw);
        self.initializers.push(t);
        name
    }

    fn floats(&mut self, stem: &str, dims: &[i64], v: impl IntoIterator<Item = f32>) -> String {
        let raw = v.into_iter().flat_map(f32::to_le_bytes).collect();
        self.constant(stem, dims, FLOAT, raw)
    }

    fn bools(&mut self, stem: &str, v: &[bool]) -> String {
        self.constant(
            stem,
            &[v.len() as i64],
            BOOL,
            v.iter().map(|&b| u8::from(b)).collect(),
        )
    }

    /// A node with attributes already encoded; returns its (one) output.
    fn node_with(&mut self, op: &str, inputs: &[&str], attributes: Vec<Msg>) -> String {
        let out = self.name(&op.to_ascii_lowercase());
        let mut n = Msg::default();
        for i in inputs {
            n.str(1, i);
        }
        n.str(2, &out).str(3, &out).str(4, op);
        for a in &attributes {
            n.msg(5, a);
        }
        self.nodes.push(n);
        out
    }

    fn node(&mut self, op: &str, inputs: &[&str]) -> String {
        self.node_with(op, inputs, Vec::new())
    }
}

/// `float[dims]` with `N` as the symbolic first dimension where `dims[0]` is `None`.
fn value_info(name: &str, dims: &[Option<i64>]) -> Msg {
    let mut shape = Msg::default();
    for d in dims {
        let mut dim = Msg::default();
        match d {
            Some(v) => dim.int(1, *v),
            None => dim.str(2, "N"),
        };
        shape.msg(1, &dim);
    }
    let mut tensor = Msg::default();
    tensor.int(1, FLOAT).msg(2, &shape);
    let mut ty = Msg::default();
    ty.msg(1, &tensor);
    let mut vi = Msg::default();
    vi.str(1, name).msg(2, &ty);
    vi
}

/// Exports the bundle's autoencoder, with its preprocessing, as an ONNX model.
///
/// # Errors
/// Not an autoencoder; a feature that is not numeric; a bundle without preprocessing.
pub fn export(bundle: &Bundle) -> MlResult<Vec<u8>> {
    let Model::Autoencoder(ae) = bundle.model()? else {
        return Err(MlError::options(format!(
            "ONNX export is for autoencoders; this is a {} (its scores are fleetwatch's own)",
            bundle.manifest.algorithm
        )));
    };
    let pre = bundle
        .manifest
        .preprocessing
        .as_ref()
        .ok_or_else(|| MlError::bundle("the bundle has no preprocessing to export"))?;
    let (mut fill, mut mean, mut inv, mut log_col, mut transformed) =
        (vec![], vec![], vec![], vec![], vec![]);
    for c in &pre.columns {
        match c {
            ColumnTransform::Numeric {
                fill: f,
                transform,
                mean: m,
                scale,
                ..
            } => {
                fill.push(*f as f32);
                mean.push(*m as f32);
                inv.push((1.0 / scale) as f32);
                log_col.push(*transform == Transform::Log);
                transformed.push(*transform != Transform::None);
            }
            ColumnTransform::OneHot { name, .. } => {
                return Err(MlError::options(format!(
                    "feature {name:?} is a category (one-hot): ONNX export takes numeric features only"
                )));
            }
        }
    }
    let width = fill.len() as i64;
    let mut g = Graph::default();
    let x = "features";
    // Missing: NaN, and a negative value in a `log` column.
    let mut missing = g.node("IsNaN", &[x]);
    if log_col.iter().any(|&b| b) {
        let zero = g.floats("zero", &[], [0.0]);
        let neg = g.node("Less", &[x, &zero]);
        let cols = g.bools("log_columns", &log_col);
        let neg_log = g.node("And", &[&neg, &cols]);
        missing = g.node("Or", &[&missing, &neg_log]);
    }
    let fill = g.floats("fill", &[width], fill);
    let mut v = g.node("Where", &[&missing, &fill, x]);
    // log1p and signed_log1p agree on the non-negative values a `log` column has left.
    if transformed.iter().any(|&b| b) {
        let one = g.floats("one", &[], [1.0]);
        let abs = g.node("Abs", &[&v]);
        let a1 = g.node("Add", &[&abs, &one]);
        let l = g.node("Log", &[&a1]);
        let sign = g.node("Sign", &[&v]);
        let sl = g.node("Mul", &[&sign, &l]);
        let cols = g.bools("transformed_columns", &transformed);
        v = g.node("Where", &[&cols, &sl, &v]);
    }
    let mean = g.floats("mean", &[width], mean);
    let inv = g.floats("inverse_scale", &[width], inv);
    let centred = g.node("Sub", &[&v, &mean]);
    let z = g.node("Mul", &[&centred, &inv]);
    let mut h = z.clone();
    for (i, layer) in ae.layers.iter().enumerate() {
        let (rows, cols) = layer.kernel.dim();
        let w = g.floats(
            &format!("dense{i}_kernel"),
            &[rows as i64, cols as i64],
            layer.kernel.iter().copied(),
        );
        let b = g.floats(
            &format!("dense{i}_bias"),
            &[cols as i64],
            layer.bias.iter().copied(),
        );
        let m = g.node("MatMul", &[&h, &w]);
        h = g.node("Add", &[&m, &b]);
        h = match layer.activation {
            Activation::Relu => g.node("Relu", &[&h]),
            Activation::Tanh => g.node("Tanh", &[&h]),
            Activation::Sigmoid => g.node("Sigmoid", &[&h]),
            Activation::Linear => h,
        };
    }
    let d = g.node("Sub", &[&h, &z]);
    let sq = g.node("Mul", &[&d, &d]);
    let mut axes = Msg::default();
    axes.str(1, "axes").int(20, 7).int(8, 1);
    let mut keep = Msg::default();
    keep.str(1, "keepdims").int(20, 2).int(3, 0);
    let mean_sq = g.node_with("ReduceMean", &[&sq], vec![axes, keep]);
    // The output under its spec's name.
    let tensor = bundle.manifest.output.tensor.clone();
    let mut ident = Msg::default();
    ident
        .str(1, &mean_sq)
        .str(2, &tensor)
        .str(3, "output")
        .str(4, "Identity");
    g.nodes.push(ident);

    let mut graph = Msg::default();
    for n in &g.nodes {
        graph.msg(1, n);
    }
    graph.str(2, "fleetwatch_autoencoder");
    for t in &g.initializers {
        graph.msg(5, t);
    }
    graph.str(
        10,
        &format!(
            "fleetwatch {} autoencoder, digest {}",
            bundle.manifest.algorithm,
            bundle.digest()
        ),
    );
    graph.msg(11, &value_info(x, &[None, Some(width)]));
    graph.msg(12, &value_info(&tensor, &[None]));
    let mut opset = Msg::default();
    opset.str(1, "").int(2, OPSET);
    let mut model = Msg::default();
    model
        .int(1, IR_VERSION)
        .str(2, "fleetwatch")
        .str(3, env!("CARGO_PKG_VERSION"))
        .msg(7, &graph)
        .msg(8, &opset);
    Ok(model.0)
}
