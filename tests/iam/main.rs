//! The SAM template grants each function exactly what its code does.
//!
//! `coverage`: a scenario touching every function runs against LocalStack
//! (which does not enforce IAM) while every AWS request is recorded with the
//! function that made it (`berth_aws::calls`); each request is mapped to the
//! IAM actions and resource it needs, and infra/template.yaml must grant each
//! to that function's role, and grant nothing the scenario never used (but
//! for a short list of grants needed where the scenario cannot go).
//!
//! `environment`: every variable the code reads is set by the template or
//! documented with its default in README's configuration section.

mod coverage;
mod environment;
mod template;
