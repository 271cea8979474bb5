//! The UDF registry: every function SQL can call, by ksqlDB name, with its signatures.
//!
//! A function is either one of fleetwatch's own ([`Udf`], e.g. the PII functions, the date
//! functions with Java patterns, `GEO_DISTANCE`) or one of DataFusion's built-ins under its
//! ksqlDB name (`UCASE` is DataFusion's `upper`). Each entry carries what `SHOW FUNCTIONS`
//! and `DESCRIBE FUNCTION` print. Names are matched case-insensitively; DataFusion's own
//! lower-case names stay reachable only for the planner's internal rewrites (`SUBSTRING(x
//! FROM 1)`, `TRIM(x)`, array literals), which users cannot spell unquoted because the
//! dialect upper-cases unquoted names.
//!
//! Aggregates (the second SQL part) will register beside scalars with the same
//! documentation; the seam is [`FunctionKind`].

mod builtin;
mod datetime;
mod ksql;
mod math;

use arrow::datatypes::DataType;
use datafusion_common::{DataFusionError, Result as DfResult, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use datetime::{JavaFormat, Zone};

/// An argument type in a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    /// `STRING` (any Arrow string type is cast to `Utf8`).
    String,
    /// `INT`.
    Int,
    /// `BIGINT`.
    BigInt,
    /// `DOUBLE`.
    Double,
    /// `BOOLEAN`.
    Boolean,
    /// `TIMESTAMP`.
    Timestamp,
    /// `BYTES`.
    Bytes,
    /// Any type, passed as it is.
    Any,
}

impl ArgType {
    /// ksqlDB's name for it.
    pub fn sql_name(self) -> &'static str {
        match self {
            ArgType::String => "VARCHAR",
            ArgType::Int => "INT",
            ArgType::BigInt => "BIGINT",
            ArgType::Double => "DOUBLE",
            ArgType::Boolean => "BOOLEAN",
            ArgType::Timestamp => "TIMESTAMP",
            ArgType::Bytes => "BYTES",
            ArgType::Any => "ANY",
        }
    }

    /// The Arrow type an argument of type `given` is cast to, if it can be.
    fn coerce(self, given: &DataType) -> Option<DataType> {
        use DataType as D;
        let numeric = given.is_numeric();
        let null = matches!(given, D::Null);
        match self {
            ArgType::Any => Some(given.clone()),
            ArgType::String => {
                matches!(given, D::Utf8 | D::Utf8View | D::LargeUtf8 | D::Null).then_some(D::Utf8)
            }
            ArgType::Int => (null || given.is_integer()).then_some(D::Int32),
            ArgType::BigInt => (null || given.is_integer()).then_some(D::Int64),
            ArgType::Double => (null || numeric).then_some(D::Float64),
            ArgType::Boolean => matches!(given, D::Boolean | D::Null).then_some(D::Boolean),
            ArgType::Timestamp => matches!(given, D::Timestamp(..) | D::Null)
                .then_some(D::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None)),
            ArgType::Bytes => matches!(given, D::Binary | D::BinaryView | D::LargeBinary | D::Null)
                .then_some(D::Binary),
        }
    }
}

/// One accepted argument list.
#[derive(Debug, Clone)]
pub struct Variant {
    /// `(name, type)` per argument.
    pub args: Vec<(&'static str, ArgType)>,
    /// The result type, as shown.
    pub returns: &'static str,
    /// What this variant does.
    pub description: &'static str,
}

impl Variant {
    /// A variant.
    pub fn new(
        args: &[(&'static str, ArgType)],
        returns: &'static str,
        description: &'static str,
    ) -> Self {
        Variant {
            args: args.to_vec(),
            returns,
            description,
        }
    }
}

/// Scalar (one value per row) or, in the second SQL part, aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FunctionKind {
    /// One result per row.
    #[serde(rename = "SCALAR")]
    Scalar,
    /// One result per group (registered by the second SQL part).
    #[serde(rename = "AGGREGATE")]
    Aggregate,
}

/// What `SHOW FUNCTIONS` and `DESCRIBE FUNCTION` say of a function.
#[derive(Debug, Clone)]
pub struct FunctionDoc {
    /// Its name, upper case.
    pub name: &'static str,
    /// ksqlDB's category (`STRING`, `MATHEMATICAL`, `DATE / TIME`, `JSON`, `GEOGRAPHIC`, …).
    pub category: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Its signatures.
    pub variants: Vec<Variant>,
}

/// A scalar function of fleetwatch's own: the trait to implement for a new UDF.
///
/// Contract: `invoke` gets arguments already cast to the Arrow types of the variant that
/// matched (see [`ArgType`]), evaluates a whole batch at once, and returns an array of
/// `rows` values (or a scalar). A value it cannot compute is an error naming the function
/// and the value; the engine then evaluates that batch row by row, so only the failing rows
/// get NULL (and a processing-log entry).
pub trait Udf: Send + Sync + std::fmt::Debug + 'static {
    /// Its documentation, name and signatures.
    fn doc(&self) -> &FunctionDoc;

    /// The result type for these (already coerced) argument types.
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType>;

    /// Evaluates the function on a batch.
    fn invoke(&self, args: &[ColumnarValue], rows: usize) -> DfResult<ColumnarValue>;

    /// Whether it may answer differently for the same arguments (`RANDOM`, `UNIX_TIMESTAMP()`).
    fn volatile(&self) -> bool {
        false
    }
}

/// Adapts a [`Udf`] to DataFusion.
#[derive(Debug)]
struct UdfAdapter {
    udf: Arc<dyn Udf>,
    signature: Signature,
}

impl PartialEq for UdfAdapter {
    fn eq(&self, other: &Self) -> bool {
        self.udf.doc().name == other.udf.doc().name
    }
}

impl Eq for UdfAdapter {}

impl std::hash::Hash for UdfAdapter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.udf.doc().name.hash(state);
    }
}

impl ScalarUDFImpl for UdfAdapter {
    fn name(&self) -> &str {
        self.udf.doc().name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.udf.return_type(arg_types)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        coerce(self.udf.doc(), arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        self.udf.invoke(&args.args, args.number_rows)
    }
}

/// Picks the first variant the arguments fit and returns the types to cast them to.
fn coerce(doc: &FunctionDoc, given: &[DataType]) -> DfResult<Vec<DataType>> {
    for v in doc.variants.iter().filter(|v| v.args.len() == given.len()) {
        let cast: Option<Vec<DataType>> = v
            .args
            .iter()
            .zip(given)
            .map(|((_, t), g)| t.coerce(g))
            .collect();
        if let Some(c) = cast {
            return Ok(c);
        }
    }
    let given: Vec<String> = given.iter().map(crate::types::type_name).collect();
    let accepted: Vec<String> = doc
        .variants
        .iter()
        .map(|v| {
            let a: Vec<&str> = v.args.iter().map(|(_, t)| t.sql_name()).collect();
            format!("{}({})", doc.name, a.join(", "))
        })
        .collect();
    plan_err!(
        "function {} does not accept ({}); it accepts {}",
        doc.name,
        given.join(", "),
        accepted.join(" or ")
    )
}

/// A registered function.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What is planned.
    pub udf: Arc<ScalarUDF>,
    /// What is shown.
    pub doc: Arc<FunctionDoc>,
    /// Scalar or aggregate.
    pub kind: FunctionKind,
}

/// Every function SQL can call.
#[derive(Debug, Clone, Default)]
pub struct FunctionRegistry {
    by_name: BTreeMap<String, Entry>,
    /// DataFusion's functions by their own (lower-case) names, for planner rewrites.
    internal: BTreeMap<String, Arc<ScalarUDF>>,
}

/// The context the built-in functions need.
#[derive(Debug, Clone, Default)]
pub struct FunctionContext {
    /// `HASH_PII`'s keys (`[pii] hash_key_file`); without it, `HASH_PII` fails naming the
    /// setting.
    pub hash_keys: Option<Arc<fleetwatch_pii::HashKeys>>,
}

impl FunctionRegistry {
    /// ksqlDB's functions (those fleetwatch has) and fleetwatch's own.
    pub fn ksql(ctx: &FunctionContext) -> Self {
        let mut r = FunctionRegistry::default();
        for f in datafusion_functions::all_default_functions()
            .into_iter()
            .chain(datafusion_functions_nested::all_default_nested_functions())
        {
            for n in std::iter::once(f.name().to_string()).chain(f.aliases().iter().cloned()) {
                r.internal.insert(n, f.clone());
            }
        }
        builtin::register(&mut r);
        for udf in ksql::all(ctx) {
            r.register(udf);
        }
        r
    }

    /// Registers a fleetwatch UDF (replacing one of the same name).
    pub fn register(&mut self, udf: Arc<dyn Udf>) {
        let name = udf.doc().name.to_string();
        let volatility = if udf.volatile() {
            Volatility::Volatile
        } else {
            Volatility::Immutable
        };
        let doc = Arc::new(udf.doc().clone());
        let adapter = UdfAdapter {
            udf,
            signature: Signature::user_defined(volatility),
        };
        self.by_name.insert(
            name,
            Entry {
                udf: Arc::new(ScalarUDF::new_from_impl(adapter)),
                doc,
                kind: FunctionKind::Scalar,
            },
        );
    }

    /// Registers one of DataFusion's functions under a ksqlDB name.
    fn alias(&mut self, doc: FunctionDoc, datafusion_name: &str) {
        let Some(udf) = self.internal.get(datafusion_name).cloned() else {
            // A DataFusion upgrade renamed it: the function is missing, and a test says so.
            tracing::warn!(name = datafusion_name, "DataFusion function not found");
            return;
        };
        self.by_name.insert(
            doc.name.to_string(),
            Entry {
                udf,
                doc: Arc::new(doc),
                kind: FunctionKind::Scalar,
            },
        );
    }

    /// The function called `name` (any case), for planning.
    pub fn get(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        if let Some(e) = self.by_name.get(&name.to_ascii_uppercase()) {
            return Some(e.udf.clone());
        }
        // The planner's own rewrites call DataFusion names in lower case.
        self.internal.get(name).cloned()
    }

    /// The entry of a user-visible function.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(&name.to_ascii_uppercase())
    }

    /// Every user-visible function, by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_name.values()
    }

    /// A planner message with DataFusion's names of aliased built-ins replaced by the ksqlDB
    /// names the user wrote (`upper` → `UCASE`).
    pub fn user_names(&self, message: &str) -> String {
        let mut out = message.to_string();
        for e in self.by_name.values() {
            let df = e.udf.name();
            if df.eq_ignore_ascii_case(e.doc.name) {
                continue;
            }
            for (from, to) in [
                (format!("'{df}'"), format!("'{}'", e.doc.name)),
                (format!("\"{df}\""), format!("\"{}\"", e.doc.name)),
                (format!("{df}("), format!("{}(", e.doc.name)),
            ] {
                if out.contains(&from) {
                    out = out.replace(&from, &to);
                }
            }
        }
        out
    }

    /// All names (for completion and `SHOW FUNCTIONS`).
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}

/// An error from a function's evaluation, naming the function.
pub(crate) fn fail<T>(function: &str, why: impl std::fmt::Display) -> DfResult<T> {
    exec_err!("{function}: {why}")
}

/// Wraps any error as an execution error.
pub(crate) fn exec(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksql_names_resolve_and_internal_names_stay_lower_case() {
        let r = FunctionRegistry::ksql(&FunctionContext::default());
        for n in [
            "MASK",
            "mask_keep_left",
            "UCASE",
            "LCASE",
            "LEN",
            "SUBSTRING",
            "CONCAT",
            "ABS",
            "ROUND",
            "COALESCE",
            "IFNULL",
            "TIMESTAMPTOSTRING",
            "STRINGTOTIMESTAMP",
            "EXTRACTJSONFIELD",
            "GEO_DISTANCE",
            "HASH_PII",
            "SPLIT",
            "ARRAY_LENGTH",
            "REPLACE",
            "TRIM",
        ] {
            assert!(r.get(n).is_some(), "{n} is missing");
            assert!(r.entry(n).is_some(), "{n} has no entry");
        }
        // DataFusion's name works only in lower case (the planner's rewrites).
        assert!(r.get("btrim").is_some());
        assert!(r.entry("BTRIM").is_none());
        assert!(r.get("UPPER").is_none());
    }

    #[test]
    fn coercion_picks_the_fitting_variant_or_names_the_accepted_ones() {
        let r = FunctionRegistry::ksql(&FunctionContext::default());
        let doc = &r.entry("MASK_KEEP_LEFT").unwrap().doc;
        assert_eq!(
            coerce(doc, &[DataType::Utf8View, DataType::Int64]).unwrap(),
            vec![DataType::Utf8, DataType::Int32]
        );
        let e = coerce(doc, &[DataType::Float64]).unwrap_err().to_string();
        assert!(e.contains("MASK_KEEP_LEFT(VARCHAR, INT)"), "{e}");
    }
}
