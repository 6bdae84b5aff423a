//! Terraform JSON expressions and provider-schema conformance (filled in by the conformance work).
