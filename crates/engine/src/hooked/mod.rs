//! The hooked (TransformerLens-style) backend: one generic transformer
//! driven by each family's config.
