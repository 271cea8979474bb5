//! Planning a ksqlDB `SELECT` with DataFusion: the query's standard part goes through
//! `SqlToRel` (identifier normalisation off — the dialect upper-cased already), the
//! analyzer's type coercion, then each filter and projection expression becomes a
//! `PhysicalExpr` evaluated on Arrow batches of the source's schema.
//!
//! Part 1 plans stateless queries: one source, `WHERE`, projections, `PARTITION BY`.
//! Joins, `GROUP BY`, `HAVING` and `WINDOW` are refused with a clear message.

use crate::catalog::{Catalog, PSEUDO_COLUMNS, Source};
use crate::error::{SqlError, SqlResult};
use crate::functions::FunctionRegistry;
use crate::parser::{Emit, KsqlQuery};
use crate::types::SqlType;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{DFSchema, TableReference};
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::logical_plan::builder::LogicalTableSource;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::planner::{ContextProvider, ExprPlanner, TypePlanner};
use datafusion_expr::{
    AggregateUDF, Expr, HigherOrderUDF, LogicalPlan, ScalarUDF, TableSource, WindowUDF,
};
use datafusion_optimizer::analyzer::Analyzer;
use datafusion_optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};
use datafusion_physical_expr::PhysicalExpr;
use datafusion_sql::planner::{ParserOptions, SqlToRel};
use datafusion_sql::sqlparser::ast::{self, SelectItem, SetExpr, TableFactor};
use std::sync::Arc;

/// One output column.
#[derive(Debug, Clone)]
pub struct OutColumn {
    /// Its name.
    pub name: String,
    /// How it is computed from a source batch.
    pub expr: Arc<dyn PhysicalExpr>,
    /// Its Arrow type.
    pub data_type: DataType,
    /// Whether it is (part of) the output key.
    pub key: bool,
    /// The logical expression, for `EXPLAIN`.
    pub logical: String,
}

/// A planned stateless query.
#[derive(Debug, Clone)]
pub struct SelectPlan {
    /// The source read.
    pub source: Arc<Source>,
    /// Rows kept.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// The filter's logical form, for `EXPLAIN`.
    pub filter_text: Option<String>,
    /// Output columns, in `SELECT` order (key columns included; `PARTITION BY` keys not
    /// in the projection are appended).
    pub columns: Vec<OutColumn>,
    /// Whether `PARTITION BY` re-keys the output.
    pub repartitioned: bool,
    /// `EMIT …`.
    pub emit: Option<Emit>,
    /// `LIMIT n`.
    pub limit: Option<u64>,
}

impl SelectPlan {
    /// Indexes (in the source's schema) of the columns the filter and projections read.
    pub fn used_columns(&self) -> std::collections::BTreeSet<usize> {
        let mut used = std::collections::BTreeSet::new();
        let exprs = self
            .filter
            .iter()
            .chain(self.columns.iter().map(|c| &c.expr));
        for e in exprs {
            used.extend(
                datafusion_physical_expr::utils::collect_columns(e)
                    .iter()
                    .map(|c| c.index()),
            );
        }
        used
    }

    /// The schema of all output columns (what push queries return).
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The schema of the value columns (what persistent queries write as values).
    pub fn value_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .filter(|c| !c.key)
                .map(|c| Field::new(&c.name, c.data_type.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The output columns as SQL types (for `CREATE … AS SELECT`), or an error naming a
    /// column whose type SQL cannot name.
    pub fn sql_columns(&self) -> SqlResult<Vec<crate::catalog::Column>> {
        self.columns
            .iter()
            .map(|c| {
                Ok(crate::catalog::Column {
                    name: c.name.clone(),
                    ty: SqlType::from_arrow(&c.data_type).ok_or_else(|| {
                        SqlError::statement(format!(
                            "column {} has the type {}, which a stream cannot hold",
                            c.name, c.data_type
                        ))
                    })?,
                    key: c.key,
                })
            })
            .collect()
    }
}

/// ksqlDB's `TIMESTAMP` is milliseconds (DataFusion's default is nanoseconds); `STRING`
/// is `Utf8`.
#[derive(Debug)]
struct KsqlTypes;

impl TypePlanner for KsqlTypes {
    fn plan_type_field(&self, t: &ast::DataType) -> datafusion_common::Result<Option<FieldRef>> {
        let dt = match t {
            ast::DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Millisecond, None),
            ast::DataType::Time(_, _) => DataType::Time32(TimeUnit::Millisecond),
            ast::DataType::String(_) | ast::DataType::Varchar(_) | ast::DataType::Text => {
                DataType::Utf8
            }
            ast::DataType::Bytes(_) | ast::DataType::Bytea => DataType::Binary,
            ast::DataType::Int(_) | ast::DataType::Integer(_) => DataType::Int32,
            ast::DataType::Double(_) | ast::DataType::DoublePrecision => DataType::Float64,
            ast::DataType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("BYTES") => {
                DataType::Binary
            }
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(Field::new("", dt, true))))
    }
}

/// What DataFusion's planner sees of the catalog and the functions.
struct Ctx<'a> {
    catalog: &'a Catalog,
    functions: &'a FunctionRegistry,
    options: ConfigOptions,
    planners: Vec<Arc<dyn ExprPlanner>>,
    types: Arc<dyn TypePlanner>,
}

impl<'a> Ctx<'a> {
    fn new(catalog: &'a Catalog, functions: &'a FunctionRegistry) -> Self {
        #[allow(deprecated)]
        let planners: Vec<Arc<dyn ExprPlanner>> = vec![
            Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
            Arc::new(datafusion_functions_nested::planner::NestedFunctionPlanner),
            Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
            Arc::new(datafusion_functions::planner::UserDefinedFunctionPlanner),
        ];
        let mut options = ConfigOptions::default();
        options.sql_parser.enable_ident_normalization = false;
        Ctx {
            catalog,
            functions,
            options,
            planners,
            types: Arc::new(KsqlTypes),
        }
    }
}

impl ContextProvider for Ctx<'_> {
    fn get_table_source(
        &self,
        name: TableReference,
    ) -> datafusion_common::Result<Arc<dyn TableSource>> {
        let s = self
            .catalog
            .require(name.table())
            .map_err(|e| datafusion_common::DataFusionError::Plan(e.to_string()))?;
        Ok(Arc::new(LogicalTableSource::new(s.schema())))
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    fn get_type_planner(&self) -> Option<Arc<dyn TypePlanner>> {
        Some(self.types.clone())
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions.get(name)
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.functions.names()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The one source a stateless query reads, refusing what part 1 cannot run.
fn single_source(q: &ast::Query) -> SqlResult<(String, Option<String>)> {
    if q.with.is_some() {
        return Err(SqlError::statement(
            "WITH (common table expressions) is not supported",
        ));
    }
    if q.order_by.is_some() {
        return Err(SqlError::statement("ORDER BY is not supported on streams"));
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return Err(SqlError::statement(
            "only a plain SELECT … FROM … is supported (no UNION, VALUES or subqueries)",
        ));
    };
    if sel.from.is_empty() {
        return Err(SqlError::statement(
            "a query needs FROM and a stream or table",
        ));
    }
    if sel.from.len() > 1 || !sel.from[0].joins.is_empty() {
        return Err(SqlError::statement(
            "joins are not supported yet (they come with windows and tables)",
        ));
    }
    if !matches!(&sel.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty())
        || sel.having.is_some()
    {
        return Err(SqlError::statement(
            "GROUP BY and HAVING (aggregations) are not supported yet",
        ));
    }
    if sel.distinct.is_some() {
        return Err(SqlError::statement(
            "SELECT DISTINCT is not supported on streams",
        ));
    }
    match &sel.from[0].relation {
        TableFactor::Table { name, alias, .. } => Ok((
            name.to_string()
                .trim_matches('`')
                .trim_matches('"')
                .to_string(),
            alias.as_ref().map(|a| a.name.value.clone()),
        )),
        _ => Err(SqlError::statement("FROM must name a stream or table")),
    }
}

/// The prefix of placeholder names of unaliased computed columns.
const AUTO_NAME: &str = "__FLEETWATCH_AUTO_";

/// Replaces `*` and `alias.*` with the source's key and value columns (not the
/// pseudo-columns), as ksqlDB expands them.
fn expand_wildcards(q: &mut ast::Query, source: &Source) {
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return;
    };
    let mut items = Vec::with_capacity(sel.projection.len());
    for item in sel.projection.drain(..) {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                for c in &source.columns {
                    items.push(SelectItem::UnnamedExpr(ast::Expr::Identifier(
                        ast::Ident::with_quote('"', &c.name),
                    )));
                }
            }
            // A computed expression without an alias gets a placeholder name, so that two of
            // them DataFusion would name alike (`CAST(x AS INT)`, `CAST(x AS STRING)`) do not
            // collide; it becomes `KSQL_COL_n` below.
            SelectItem::UnnamedExpr(e)
                if !matches!(
                    e,
                    ast::Expr::Identifier(_)
                        | ast::Expr::CompoundIdentifier(_)
                        | ast::Expr::CompoundFieldAccess { .. }
                ) =>
            {
                let alias = ast::Ident::new(format!("{AUTO_NAME}{}", items.len()));
                items.push(SelectItem::ExprWithAlias { expr: e, alias });
            }
            other => items.push(other),
        }
    }
    sel.projection = items;
}

/// The output name of an expression ksqlDB would give: the column's or the last struct
/// field's name; `None` for computed expressions (they get `KSQL_COL_n`).
fn natural_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Column(c) => Some(c.name.clone()),
        Expr::Cast(c) => natural_name(&c.expr).filter(|_| false),
        Expr::ScalarFunction(f) if f.func.name() == "get_field" => match f.args.last() {
            Some(Expr::Literal(v, _)) => v.to_string().trim_matches('"').to_string().into(),
            _ => None,
        },
        _ => None,
    }
}

/// Plans a stateless `SELECT`.
pub fn plan_select(
    catalog: &Catalog,
    functions: &FunctionRegistry,
    q: &KsqlQuery,
) -> SqlResult<SelectPlan> {
    if q.window.is_some() {
        return Err(SqlError::statement(
            "WINDOW is not supported yet (windowed aggregation comes with tables)",
        ));
    }
    if q.emit == Some(Emit::Final) {
        return Err(SqlError::statement(
            "EMIT FINAL needs a windowed aggregation, which is not supported yet",
        ));
    }
    let (source_name, _alias) = single_source(&q.query)?;
    let source = catalog.require(&source_name)?;
    let mut query = q.query.as_ref().clone();
    expand_wildcards(&mut query, &source);
    let ctx = Ctx::new(catalog, functions);
    let planner = SqlToRel::new_with_options(
        &ctx,
        ParserOptions {
            enable_ident_normalization: false,
            map_string_types_to_utf8view: false,
            ..ParserOptions::new()
        },
    );
    let plan = planner.sql_statement_to_plan(ast::Statement::Query(Box::new(query)))?;
    let plan = Analyzer::new().execute_and_check(plan, &ctx.options, |_, _| {})?;
    let input: DFSchema = DFSchema::try_from_qualified_schema(
        TableReference::bare(source.name.clone()),
        &source.schema(),
    )?;
    let props = ExecutionProps::new();
    let pctx = PhysicalPlanningContext::default();
    // Functions that DataFusion only ever runs rewritten (`coalesce`, `nvl` become CASE)
    // need the simplifier's rewrite before they are made physical.
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::new(input.clone()))
            .build(),
    );
    let physical = |e: &Expr| {
        let e = simplifier.simplify(e.clone())?;
        datafusion_physical_expr::create_physical_expr(&e, &input, &props, &pctx)
    };

    // Projection → [Filter] → [SubqueryAlias] → TableScan.
    let LogicalPlan::Projection(projection) = &plan else {
        return Err(SqlError::Internal(format!(
            "unexpected plan shape:\n{plan}"
        )));
    };
    let mut below = projection.input.as_ref();
    let mut filter = None;
    let mut filter_text = None;
    loop {
        match below {
            LogicalPlan::Filter(f) => {
                filter = Some(physical(&f.predicate)?);
                filter_text = Some(f.predicate.to_string());
                below = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(a) => below = a.input.as_ref(),
            LogicalPlan::TableScan(_) => break,
            other => {
                return Err(SqlError::statement(format!(
                    "this query shape is not supported yet:\n{other}"
                )));
            }
        }
    }
    let out_schema = projection.schema.clone();
    let mut columns = Vec::with_capacity(projection.expr.len());
    let mut generated = 0usize;
    let mut names = std::collections::BTreeSet::new();
    for (i, e) in projection.expr.iter().enumerate() {
        let (inner, alias) = match e {
            Expr::Alias(a) => (
                a.expr.as_ref(),
                Some(a.name.clone()).filter(|n| !n.starts_with(AUTO_NAME)),
            ),
            other => (other, None),
        };
        let name = match alias.or_else(|| natural_name(inner)) {
            Some(n) => n,
            None => loop {
                let n = format!("KSQL_COL_{generated}");
                generated += 1;
                if !names.contains(&n) {
                    break n;
                }
            },
        };
        if PSEUDO_COLUMNS.contains(&name.as_str()) && !matches!(inner, Expr::Column(_)) {
            return Err(SqlError::statement(format!(
                "{name} is a reserved column name"
            )));
        }
        if !names.insert(name.clone()) {
            return Err(SqlError::statement(format!(
                "the output column {name} appears twice: give one an alias with AS"
            )));
        }
        let data_type = out_schema.field(i).data_type().clone();
        columns.push(OutColumn {
            name,
            expr: physical(inner)?,
            data_type,
            key: false,
            logical: inner.to_string(),
        });
    }
    // Keys: PARTITION BY's expressions, else the source's key columns when projected.
    let mut repartitioned = false;
    if q.partition_by.is_empty() {
        for k in source.key_columns() {
            let idx = projection
                .expr
                .iter()
                .position(|e| matches!(strip_alias(e), Expr::Column(c) if c.name == k.name));
            if let Some(i) = idx {
                columns[i].key = true;
            }
        }
    } else {
        repartitioned = true;
        // Plan `SELECT <partition exprs> FROM source` to get them typed and coerced alike.
        let mut pq = q.query.as_ref().clone();
        if let SetExpr::Select(sel) = pq.body.as_mut() {
            sel.projection = q
                .partition_by
                .iter()
                .map(|e| SelectItem::UnnamedExpr(e.clone()))
                .collect();
            sel.selection = None;
        }
        let pplan = planner.sql_statement_to_plan(ast::Statement::Query(Box::new(pq)))?;
        let pplan = Analyzer::new().execute_and_check(pplan, &ctx.options, |_, _| {})?;
        let LogicalPlan::Projection(pp) = &pplan else {
            return Err(SqlError::Internal(
                "PARTITION BY planned to an unexpected shape".into(),
            ));
        };
        for (j, e) in pp.expr.iter().enumerate() {
            let e = strip_alias(e);
            let same = projection.expr.iter().position(|p| strip_alias(p) == e);
            match same {
                Some(i) => columns[i].key = true,
                None => {
                    let name =
                        natural_name(e).unwrap_or_else(|| format!("KSQL_COL_{}", generated + j));
                    if !names.insert(name.clone()) {
                        return Err(SqlError::statement(format!(
                            "the PARTITION BY key {name} clashes with an output column"
                        )));
                    }
                    columns.push(OutColumn {
                        name,
                        expr: physical(e)?,
                        data_type: pp.schema.field(j).data_type().clone(),
                        key: true,
                        logical: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(SelectPlan {
        source,
        filter,
        filter_text,
        columns,
        repartitioned,
        emit: q.emit,
        limit: q.limit,
    })
}

fn strip_alias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => strip_alias(&a.expr),
        other => other,
    }
}

/// Plans one expression over a schema with no source (for `INSERT … VALUES`).
pub fn plan_constant(
    functions: &FunctionRegistry,
    e: &ast::Expr,
    target: &DataType,
) -> SqlResult<Arc<dyn PhysicalExpr>> {
    let catalog = Catalog::default();
    let ctx = Ctx::new(&catalog, functions);
    let planner = SqlToRel::new_with_options(
        &ctx,
        ParserOptions {
            enable_ident_normalization: false,
            map_string_types_to_utf8view: false,
            ..ParserOptions::new()
        },
    );
    let schema = DFSchema::empty();
    let mut pc = datafusion_sql::planner::PlannerContext::new();
    let logical = planner.sql_to_expr(e.clone(), &schema, &mut pc)?;
    let logical = Expr::Cast(datafusion_expr::Cast::new(
        Box::new(logical),
        target.clone(),
    ));
    let props = ExecutionProps::new();
    let pctx = PhysicalPlanningContext::default();
    Ok(datafusion_physical_expr::create_physical_expr(
        &logical, &schema, &props, &pctx,
    )?)
}

/// A plan that projects every column of a source as it is (keys as keys), for writing rows
/// built elsewhere (`INSERT … VALUES`) with the same encoders as query output.
pub fn columns_plan(source: &Arc<Source>) -> SelectPlan {
    let columns = source
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| OutColumn {
            name: c.name.clone(),
            expr: Arc::new(datafusion_physical_expr::expressions::Column::new(
                &c.name,
                i + PSEUDO_COLUMNS.len(),
            )),
            data_type: c.ty.to_arrow(),
            key: c.key,
            logical: c.name.clone(),
        })
        .collect();
    SelectPlan {
        source: source.clone(),
        filter: None,
        filter_text: None,
        columns,
        repartitioned: false,
        emit: None,
        limit: None,
    }
}
