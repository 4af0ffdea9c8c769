//! Checks a response against the OpenAPI document: the schema of the operation's declared
//! response for that status, with `$ref`s resolved inside the document.

use serde_json::{Value, json};
use std::sync::OnceLock;

pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(shipgate::api::openapi::OPENAPI).expect("schemas/openapi.json is JSON")
    })
}

/// The schema declared for `method template -> status`; panics if the contract does not declare
/// that response at all (an undocumented status is drift too).
pub fn response_schema(method: &str, template: &str, status: u16) -> Value {
    let doc = document();
    let op = &doc["paths"][template][method.to_ascii_lowercase()];
    assert!(
        op.is_object(),
        "contract has no operation {method} {template}"
    );
    let response = &op["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "contract declares no {status} response for {method} {template}"
    );
    let schema = response["content"]["application/json"]["schema"].clone();
    // Resolve `#/components/...` against the document: the checked schema carries the components.
    json!({ "$ref": "#/$defs/target", "$defs": { "target": schema }, "components": doc["components"] })
}

pub fn violations(method: &str, template: &str, status: u16, body: &Value) -> Vec<String> {
    let schema = response_schema(method, template, status);
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("contract schema compiles");
    validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

pub fn check(method: &str, template: &str, status: u16, body: &Value) {
    let problems = violations(method, template, status, body);
    assert!(
        problems.is_empty(),
        "{method} {template} -> {status} drifted from schemas/openapi.json:\n{}\nbody: {body}",
        problems.join("\n")
    );
}

/// Checks a value against a named schema of the document's components (e.g. a webhook payload).
pub fn check_schema(name: &str, body: &Value) {
    let doc = document();
    assert!(
        doc["components"]["schemas"][name].is_object(),
        "contract has no schema {name}"
    );
    let schema =
        json!({ "$ref": format!("#/components/schemas/{name}"), "components": doc["components"] });
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("contract schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{name} drifted from schemas/openapi.json:\n{}\nbody: {body}",
        problems.join("\n")
    );
}
