//! Helpers of the fuzz targets that need crates the fuzzed libraries do
//! not depend on.

pub mod exposition;
