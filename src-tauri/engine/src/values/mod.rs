//! Readers of values written as text — numbers (`"1.000,50"`, `"$1,000.50"`) and date-times in many formats — shared
//! by NORMALIZE (which converts them) and the schema's type inference (which asks whether every sample reads so).

pub mod datetimes;
pub mod numbers;
