//! A fitted native model: one of the algorithms, its architecture (stored in the manifest)
//! and its tensors (stored in `weights.safetensors`).

use crate::error::{MlError, MlResult};
use crate::iforest::{IsolationForest, Node};
use crate::kmeans::KMeans;
use crate::nn::{Activation, Autoencoder, Dense, Scratch};
use crate::options::ModelType;
use ndarray::{Array1, Array2, ArrayView2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

/// The shape of a model, in the manifest (the tensors hold the numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Architecture {
    /// Dense layers.
    Autoencoder {
        /// `[inputs, outputs]` per layer.
        layers: Vec<[usize; 2]>,
        /// Activation per layer (the last is linear).
        activations: Vec<Activation>,
    },
    /// A forest.
    IsolationForest {
        /// Trees.
        num_trees: usize,
        /// ψ.
        sample_size: usize,
        /// Inputs per row.
        width: usize,
    },
    /// Centroids.
    Kmeans {
        /// k.
        num_clusters: usize,
        /// Inputs per row.
        width: usize,
    },
}

/// A fitted native model.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Autoencoder.
    Autoencoder(Autoencoder),
    /// Isolation forest.
    IsolationForest(IsolationForest),
    /// k-means.
    Kmeans(KMeans),
}

/// A tensor to store: name, dtype, shape, little-endian bytes.
pub type Tensor = (String, Dtype, Vec<usize>, Vec<u8>);

fn f32_bytes(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
    v.into_iter().flat_map(f32::to_le_bytes).collect()
}

fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn read_f32(st: &SafeTensors<'_>, name: &str, len: usize) -> MlResult<Vec<f32>> {
    let t = tensor(st, name, Dtype::F32)?;
    let v: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if v.len() != len {
        return Err(MlError::bundle(format!(
            "tensor {name}: {} values, the architecture needs {len}",
            v.len()
        )));
    }
    Ok(v)
}

fn read_u32(st: &SafeTensors<'_>, name: &str) -> MlResult<Vec<u32>> {
    let t = tensor(st, name, Dtype::U32)?;
    Ok(t.data()
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn tensor<'a>(st: &'a SafeTensors<'a>, name: &str, dtype: Dtype) -> MlResult<TensorView<'a>> {
    let t = st
        .tensor(name)
        .map_err(|e| MlError::bundle(format!("weights: tensor {name}: {e}")))?;
    if t.dtype() != dtype {
        return Err(MlError::bundle(format!(
            "weights: tensor {name} is {:?}, expected {dtype:?}",
            t.dtype()
        )));
    }
    Ok(t)
}

impl Model {
    /// Its algorithm.
    pub fn model_type(&self) -> ModelType {
        match self {
            Model::Autoencoder(_) => ModelType::Autoencoder,
            Model::IsolationForest(_) => ModelType::IsolationForest,
            Model::Kmeans(_) => ModelType::Kmeans,
        }
    }

    /// Inputs per row.
    pub fn width(&self) -> usize {
        match self {
            Model::Autoencoder(a) => a.width(),
            Model::IsolationForest(f) => f.width,
            Model::Kmeans(k) => k.centroids.ncols(),
        }
    }

    /// Scores every row of `x` (already preprocessed) into `out`.
    ///
    /// # Errors
    /// `x` has another width than the model, or `out` another length than `x`'s rows.
    pub fn score_into(
        &self,
        x: ArrayView2<'_, f32>,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) -> MlResult<()> {
        if x.ncols() != self.width() || out.len() != x.nrows() {
            return Err(MlError::data(format!(
                "scoring input is {} × {} (output {}), the model takes rows of {}",
                x.nrows(),
                x.ncols(),
                out.len(),
                self.width()
            )));
        }
        match self {
            Model::Autoencoder(a) => a.score_into(x, out, scratch),
            Model::IsolationForest(f) => f.score_into(x, out),
            Model::Kmeans(k) => k.score_into(x, out),
        }
        Ok(())
    }

    /// What the manifest says of its shape.
    pub fn architecture(&self) -> Architecture {
        match self {
            Model::Autoencoder(a) => Architecture::Autoencoder {
                layers: a
                    .layers
                    .iter()
                    .map(|l| [l.kernel.nrows(), l.kernel.ncols()])
                    .collect(),
                activations: a.layers.iter().map(|l| l.activation).collect(),
            },
            Model::IsolationForest(f) => Architecture::IsolationForest {
                num_trees: f.num_trees(),
                sample_size: f.sample_size,
                width: f.width,
            },
            Model::Kmeans(k) => Architecture::Kmeans {
                num_clusters: k.centroids.nrows(),
                width: k.centroids.ncols(),
            },
        }
    }

    /// Its tensors.
    pub fn tensors(&self) -> Vec<Tensor> {
        match self {
            Model::Autoencoder(a) => a
                .layers
                .iter()
                .enumerate()
                .flat_map(|(i, l)| {
                    [
                        (
                            format!("layer.{i}.kernel"),
                            Dtype::F32,
                            l.kernel.shape().to_vec(),
                            f32_bytes(l.kernel.iter().copied()),
                        ),
                        (
                            format!("layer.{i}.bias"),
                            Dtype::F32,
                            l.bias.shape().to_vec(),
                            f32_bytes(l.bias.iter().copied()),
                        ),
                    ]
                })
                .collect(),
            Model::IsolationForest(f) => {
                let n = f.nodes.len();
                let feature: Vec<u32> = f.nodes.iter().map(|n| n.feature).collect();
                let left: Vec<u32> = f.nodes.iter().map(|n| n.left).collect();
                vec![
                    (
                        "tree.feature".into(),
                        Dtype::U32,
                        vec![n],
                        u32_bytes(&feature),
                    ),
                    (
                        "tree.threshold".into(),
                        Dtype::F32,
                        vec![n],
                        f32_bytes(f.nodes.iter().map(|n| n.threshold)),
                    ),
                    ("tree.left".into(), Dtype::U32, vec![n], u32_bytes(&left)),
                    (
                        "tree.value".into(),
                        Dtype::F32,
                        vec![n],
                        f32_bytes(f.value.iter().copied()),
                    ),
                    (
                        "forest.roots".into(),
                        Dtype::U32,
                        vec![f.roots.len()],
                        u32_bytes(&f.roots),
                    ),
                    (
                        "forest.depths".into(),
                        Dtype::U32,
                        vec![f.depths.len()],
                        u32_bytes(&f.depths),
                    ),
                ]
            }
            Model::Kmeans(k) => vec![(
                "centroids".into(),
                Dtype::F32,
                k.centroids.shape().to_vec(),
                f32_bytes(k.centroids.iter().copied()),
            )],
        }
    }

    /// The safetensors file of [`Model::tensors`].
    ///
    /// # Errors
    /// Only if safetensors refuses (a bug).
    pub fn to_safetensors(&self) -> MlResult<Vec<u8>> {
        let tensors = self.tensors();
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d, s, b)| {
                TensorView::new(*d, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| MlError::bundle(format!("tensor {n}: {e}")))
            })
            .collect::<MlResult<_>>()?;
        safetensors::serialize(views, None).map_err(|e| MlError::bundle(format!("weights: {e}")))
    }

    /// Rebuilds a model from its architecture and safetensors bytes.
    ///
    /// # Errors
    /// Not safetensors, a tensor missing or of the wrong size, trees that point outside
    /// their arrays.
    pub fn from_safetensors(arch: &Architecture, bytes: &[u8]) -> MlResult<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| MlError::bundle(format!("weights: not safetensors: {e}")))?;
        match arch {
            Architecture::Autoencoder {
                layers,
                activations,
            } => {
                let mut out = Vec::with_capacity(layers.len());
                for (i, &[inp, outp]) in layers.iter().enumerate() {
                    let k = read_f32(&st, &format!("layer.{i}.kernel"), inp * outp)?;
                    let b = read_f32(&st, &format!("layer.{i}.bias"), outp)?;
                    out.push(Dense {
                        kernel: Array2::from_shape_vec((inp, outp), k)
                            .map_err(|e| MlError::bundle(e.to_string()))?,
                        bias: Array1::from(b),
                        activation: activations.get(i).copied().unwrap_or(Activation::Linear),
                    });
                }
                for w in out.windows(2) {
                    if w[0].kernel.ncols() != w[1].kernel.nrows() {
                        return Err(MlError::bundle("weights: layer widths do not chain"));
                    }
                }
                Ok(Model::Autoencoder(Autoencoder { layers: out }))
            }
            Architecture::IsolationForest {
                num_trees,
                sample_size,
                width,
            } => {
                let feature = read_u32(&st, "tree.feature")?;
                let n = feature.len();
                let threshold = read_f32(&st, "tree.threshold", n)?;
                let left = read_u32(&st, "tree.left")?;
                let f = IsolationForest {
                    value: read_f32(&st, "tree.value", n)?,
                    roots: read_u32(&st, "forest.roots")?,
                    depths: read_u32(&st, "forest.depths")?,
                    nodes: feature
                        .iter()
                        .zip(&threshold)
                        .zip(&left)
                        .map(|((&feature, &threshold), &left)| Node {
                            feature,
                            threshold,
                            left,
                        })
                        .collect(),
                    sample_size: *sample_size,
                    width: *width,
                };
                let ok = left.len() == n
                    && f.roots.len() == *num_trees
                    && f.depths.len() == *num_trees
                    && left
                        .iter()
                        .all(|&l| (l as usize) + 1 < n + 1 && (l as usize) < n)
                    && left
                        .iter()
                        .enumerate()
                        .all(|(i, &l)| l as usize == i || (l as usize) + 1 < n)
                    && feature.iter().all(|&q| (q as usize) < (*width).max(1))
                    && f.roots.iter().all(|&r| (r as usize) < n);
                if !ok {
                    return Err(MlError::bundle(
                        "weights: the forest's arrays are inconsistent",
                    ));
                }
                Ok(Model::IsolationForest(f))
            }
            Architecture::Kmeans {
                num_clusters,
                width,
            } => {
                let c = read_f32(&st, "centroids", num_clusters * width)?;
                Ok(Model::Kmeans(KMeans {
                    centroids: Array2::from_shape_vec((*num_clusters, *width), c)
                        .map_err(|e| MlError::bundle(e.to_string()))?,
                }))
            }
        }
    }
}
