//! The bundled skill task (`config/programs/skill_understanding.yaml`): its
//! trainset schema lives here ([`schema`]); its metrics, perturbations and
//! field names will live beside it, so the generic modules only call in.

pub mod schema;
