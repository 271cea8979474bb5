//! ksqlDB functions that are DataFusion built-ins under another name (or the same one).

use super::{ArgType as T, FunctionDoc, FunctionRegistry, Variant};

fn doc(
    name: &'static str,
    category: &'static str,
    description: &'static str,
    variants: Vec<Variant>,
) -> FunctionDoc {
    FunctionDoc {
        name,
        category,
        description,
        variants,
    }
}

fn v(args: &[(&'static str, T)], returns: &'static str) -> Variant {
    Variant::new(args, returns, "")
}

/// Registers them.
pub(super) fn register(r: &mut FunctionRegistry) {
    const S: &str = "STRING";
    const M: &str = "MATHEMATICAL";
    const C: &str = "CONDITIONAL";
    const A: &str = "ARRAY";
    let table: Vec<(FunctionDoc, &str)> = vec![
        (
            doc(
                "UCASE",
                S,
                "Converts a string to upper case.",
                vec![v(&[("input", T::String)], "VARCHAR")],
            ),
            "upper",
        ),
        (
            doc(
                "LCASE",
                S,
                "Converts a string to lower case.",
                vec![v(&[("input", T::String)], "VARCHAR")],
            ),
            "lower",
        ),
        (
            doc(
                "LEN",
                S,
                "The length of a string in characters.",
                vec![v(&[("input", T::String)], "INT")],
            ),
            "character_length",
        ),
        (
            doc(
                "SUBSTRING",
                S,
                "The part of a string from a 1-based position, optionally of a length.",
                vec![
                    v(&[("str", T::String), ("pos", T::Int)], "VARCHAR"),
                    v(
                        &[("str", T::String), ("pos", T::Int), ("length", T::Int)],
                        "VARCHAR",
                    ),
                ],
            ),
            "substr",
        ),
        (
            doc(
                "CONCAT",
                S,
                "Joins strings.",
                vec![v(&[("first", T::Any), ("rest", T::Any)], "VARCHAR")],
            ),
            "concat",
        ),
        (
            doc(
                "CONCAT_WS",
                S,
                "Joins strings with a separator.",
                vec![v(
                    &[
                        ("separator", T::String),
                        ("first", T::Any),
                        ("rest", T::Any),
                    ],
                    "VARCHAR",
                )],
            ),
            "concat_ws",
        ),
        (
            doc(
                "TRIM",
                S,
                "Removes leading and trailing whitespace.",
                vec![v(&[("input", T::String)], "VARCHAR")],
            ),
            "btrim",
        ),
        (
            doc(
                "LTRIM",
                S,
                "Removes leading whitespace.",
                vec![v(&[("input", T::String)], "VARCHAR")],
            ),
            "ltrim",
        ),
        (
            doc(
                "RTRIM",
                S,
                "Removes trailing whitespace.",
                vec![v(&[("input", T::String)], "VARCHAR")],
            ),
            "rtrim",
        ),
        (
            doc(
                "REPLACE",
                S,
                "Replaces every occurrence of a substring.",
                vec![v(
                    &[
                        ("str", T::String),
                        ("target", T::String),
                        ("replacement", T::String),
                    ],
                    "VARCHAR",
                )],
            ),
            "replace",
        ),
        (
            doc(
                "INSTR",
                S,
                "The 1-based position of a substring, 0 when absent.",
                vec![v(&[("str", T::String), ("substring", T::String)], "INT")],
            ),
            "strpos",
        ),
        (
            doc(
                "LPAD",
                S,
                "Pads a string on the left to a length.",
                vec![v(
                    &[
                        ("input", T::String),
                        ("length", T::Int),
                        ("padding", T::String),
                    ],
                    "VARCHAR",
                )],
            ),
            "lpad",
        ),
        (
            doc(
                "RPAD",
                S,
                "Pads a string on the right to a length.",
                vec![v(
                    &[
                        ("input", T::String),
                        ("length", T::Int),
                        ("padding", T::String),
                    ],
                    "VARCHAR",
                )],
            ),
            "rpad",
        ),
        (
            doc(
                "INITCAP",
                S,
                "Capitalises the first letter of each word.",
                vec![v(&[("input", T::String)], "VARCHAR")],
            ),
            "initcap",
        ),
        (
            doc(
                "SPLIT",
                S,
                "Splits a string at a delimiter into an array.",
                vec![v(
                    &[("input", T::String), ("delimiter", T::String)],
                    "ARRAY<VARCHAR>",
                )],
            ),
            "string_to_array",
        ),
        (
            doc(
                "REGEXP_REPLACE",
                S,
                "Replaces every match of a regular expression.",
                vec![v(
                    &[
                        ("input", T::String),
                        ("regex", T::String),
                        ("replacement", T::String),
                    ],
                    "VARCHAR",
                )],
            ),
            "regexp_replace",
        ),
        (
            doc(
                "CHR",
                S,
                "The character of a Unicode code point.",
                vec![v(&[("code", T::BigInt)], "VARCHAR")],
            ),
            "chr",
        ),
        (
            doc(
                "ABS",
                M,
                "The absolute value.",
                vec![v(&[("x", T::Any)], "same as x")],
            ),
            "abs",
        ),
        (
            doc(
                "CEIL",
                M,
                "Rounds up to an integral value.",
                vec![v(&[("x", T::Double)], "DOUBLE")],
            ),
            "ceil",
        ),
        (
            doc(
                "FLOOR",
                M,
                "Rounds down to an integral value.",
                vec![v(&[("x", T::Double)], "DOUBLE")],
            ),
            "floor",
        ),
        (
            doc(
                "SQRT",
                M,
                "The square root.",
                vec![v(&[("x", T::Double)], "DOUBLE")],
            ),
            "sqrt",
        ),
        (
            doc(
                "EXP",
                M,
                "e to the power of x.",
                vec![v(&[("x", T::Double)], "DOUBLE")],
            ),
            "exp",
        ),
        (
            doc(
                "LN",
                M,
                "The natural logarithm.",
                vec![v(&[("x", T::Double)], "DOUBLE")],
            ),
            "ln",
        ),
        (
            doc(
                "POWER",
                M,
                "x to the power of y.",
                vec![v(&[("x", T::Double), ("y", T::Double)], "DOUBLE")],
            ),
            "power",
        ),
        (
            doc(
                "RANDOM",
                M,
                "A random number in [0, 1).",
                vec![v(&[], "DOUBLE")],
            ),
            "random",
        ),
        (
            doc(
                "COALESCE",
                C,
                "The first argument that is not NULL.",
                vec![v(
                    &[("first", T::Any), ("others", T::Any)],
                    "same as the arguments",
                )],
            ),
            "coalesce",
        ),
        (
            doc(
                "IFNULL",
                C,
                "expression, or altValue when expression is NULL.",
                vec![v(
                    &[("expression", T::Any), ("altValue", T::Any)],
                    "same as the arguments",
                )],
            ),
            "nvl",
        ),
        (
            doc(
                "NULLIF",
                C,
                "NULL when both arguments are equal, else the first.",
                vec![v(&[("expr1", T::Any), ("expr2", T::Any)], "same as expr1")],
            ),
            "nullif",
        ),
        (
            doc(
                "ARRAY_LENGTH",
                A,
                "The number of elements of an array.",
                vec![v(&[("array", T::Any)], "INT")],
            ),
            "array_length",
        ),
        (
            doc(
                "ARRAY_CONTAINS",
                A,
                "Whether an array holds a value.",
                vec![v(&[("array", T::Any), ("value", T::Any)], "BOOLEAN")],
            ),
            "array_has",
        ),
        (
            doc(
                "MAP_KEYS",
                "MAP",
                "The keys of a map, as an array.",
                vec![v(&[("map", T::Any)], "ARRAY")],
            ),
            "map_keys",
        ),
        (
            doc(
                "MAP_VALUES",
                "MAP",
                "The values of a map, as an array.",
                vec![v(&[("map", T::Any)], "ARRAY")],
            ),
            "map_values",
        ),
    ];
    for (d, name) in table {
        r.alias(d, name);
    }
}
