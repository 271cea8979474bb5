//! ksqlDB's `ROUND` and `SIGN`, whose types and rounding differ from DataFusion's `round`
//! and `signum`: `ROUND(x)` of a DOUBLE is a BIGINT (Java's `Math.round`), an integer stays
//! as it is; `ROUND(x, places)` is a DOUBLE; halves round towards positive infinity
//! (`ROUND(-2.5)` is -2, as in ksqlDB). `SIGN` is an INT.

use super::ksql::array;
use super::{ArgType as T, FunctionDoc, Udf, Variant, exec};
use arrow::array::{Array, ArrayRef, AsArray, Float64Builder, Int32Builder, Int64Builder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int32Type};
use datafusion_common::{Result as DfResult, plan_err};
use datafusion_expr::ColumnarValue;
use std::sync::Arc;

/// The UDFs of this module.
pub(super) fn all() -> Vec<Arc<dyn Udf>> {
    vec![Arc::new(Round::new()), Arc::new(Sign::new())]
}

fn numeric(name: &str, t: &DataType) -> DfResult<()> {
    if t.is_numeric() || matches!(t, DataType::Null) {
        Ok(())
    } else {
        plan_err!(
            "function {name} does not accept ({}); it needs a number",
            crate::types::type_name(t)
        )
    }
}

/// `x` rounded to an integral value, halves towards positive infinity.
fn round_half_up(x: f64) -> f64 {
    let f = x.floor();
    if x - f >= 0.5 { f + 1.0 } else { f }
}

/// `x` rounded to `places` decimal places (negative: left of the point), halves up. A
/// value within rounding noise of a half (`1.005 * 100`) counts as a half, as ksqlDB's
/// `BigDecimal.valueOf` of the shortest decimal form does.
fn round_places(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    let s = x * scale;
    let f = s.floor();
    let frac = s - f;
    let tie = (frac - 0.5).abs() <= 1e-9 * s.abs().max(1.0);
    let r = if tie || frac > 0.5 { f + 1.0 } else { f };
    r / scale
}

#[derive(Debug)]
struct Round {
    doc: FunctionDoc,
}

impl Round {
    fn new() -> Self {
        Round {
            doc: FunctionDoc {
                name: "ROUND",
                category: "MATHEMATICAL",
                description: "Rounds to the nearest integral value (an integer stays as it is, a DOUBLE becomes a BIGINT), or to a number of decimal places (a DOUBLE); halves round towards positive infinity.",
                variants: vec![
                    Variant::new(&[("x", T::Any)], "BIGINT", "to an integral value"),
                    Variant::new(
                        &[("x", T::Double), ("places", T::Int)],
                        "DOUBLE",
                        "to decimal places",
                    ),
                ],
            },
        }
    }
}

impl Udf for Round {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        numeric("ROUND", &args[0])?;
        Ok(match (args.len(), &args[0]) {
            (1, t) if t.is_integer() => t.clone(),
            (1, _) => DataType::Int64,
            _ => DataType::Float64,
        })
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let x = array(&args[0], rows)?;
        if args.len() == 1 && x.data_type().is_integer() {
            return Ok(ColumnarValue::Array(x));
        }
        let xd = cast(&x, &DataType::Float64).map_err(exec)?;
        let xd = xd.as_primitive::<Float64Type>();
        let out: ArrayRef = if args.len() == 1 {
            let mut b = Int64Builder::with_capacity(rows);
            for v in xd.iter() {
                b.append_option(v.map(|v| round_half_up(v) as i64));
            }
            Arc::new(b.finish())
        } else {
            let p = array(&args[1], rows)?;
            let p = p.as_primitive::<Int32Type>();
            let mut b = Float64Builder::with_capacity(rows);
            for i in 0..rows {
                if xd.is_null(i) || p.is_null(i) {
                    b.append_null();
                } else {
                    b.append_value(round_places(xd.value(i), p.value(i)));
                }
            }
            Arc::new(b.finish())
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[derive(Debug)]
struct Sign {
    doc: FunctionDoc,
}

impl Sign {
    fn new() -> Self {
        Sign {
            doc: FunctionDoc {
                name: "SIGN",
                category: "MATHEMATICAL",
                description: "-1, 0 or 1 by the sign of x, as an INT.",
                variants: vec![Variant::new(&[("x", T::Double)], "INT", "")],
            },
        }
    }
}

impl Udf for Sign {
    fn doc(&self) -> &FunctionDoc {
        &self.doc
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue> {
        let x = array(&args[0], rows)?;
        let x = x.as_primitive::<Float64Type>();
        let mut b = Int32Builder::with_capacity(rows);
        for v in x.iter() {
            b.append_option(v.map(|v| {
                if v > 0.0 {
                    1
                } else if v < 0.0 {
                    -1
                } else {
                    0
                }
            }));
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_towards_positive_infinity() {
        assert_eq!(round_half_up(2.5), 3.0);
        assert_eq!(round_half_up(-2.5), -2.0);
        assert_eq!(round_half_up(-2.6), -3.0);
        assert_eq!(round_places(1.2345, 2), 1.23);
        assert_eq!(round_places(1.005, 2), 1.01);
        assert_eq!(round_places(-1.005, 2), -1.0);
        assert_eq!(round_places(1234.5, -2), 1200.0);
    }
}
