//! [`FilterError`]: a filter that cannot be built.

use crate::model::Model;

/// A filter that names a column or value the model does not have, or is otherwise invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// The query parameter or column concerned.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FilterError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FilterError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The column `column` of `M`, or an error naming the model's columns.
pub(super) fn check<M: Model>(column: &str) -> Result<&'static crate::model::Column, FilterError> {
    M::TABLE.column(column).ok_or_else(|| unknown::<M>(column))
}

/// The error for `name`, not a column of `M`.
pub(super) fn unknown<M: Model>(name: &str) -> FilterError {
    let known: Vec<&str> = M::TABLE.columns.iter().map(|c| c.name).collect();
    FilterError::new(
        name,
        format!(
            "`{name}` is not a column of {}; columns: {}",
            M::TABLE.model,
            known.join(", ")
        ),
    )
}
