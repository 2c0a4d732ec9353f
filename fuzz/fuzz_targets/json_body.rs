//! Input::from_json_slice on any bytes: an input exactly when the bytes are one JSON object,
//! otherwise `invalid_json`; every field reads without panicking, nested objects included;
//! the signing parser never panics on it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rally::routes::input::Input;

fn read_all(input: &mut Input, depth: usize) {
    let names: Vec<String> = input.field_names().map(str::to_string).collect();
    for name in &names {
        let raw = input.raw(name).map(str::to_string);
        let text = input.text(name);
        match raw {
            Some(s) => assert_eq!(text, s),
            None => assert!(text.is_empty()),
        }
        let _ = input.optional_text(name);
        let _ = input.flag(name);
        if let Some(mut inner) = input.nested(name) {
            if depth < 16 {
                read_all(&mut inner, depth + 1);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let is_object = matches!(serde_json::from_slice::<serde_json::Value>(data), Ok(serde_json::Value::Object(_)));
    match Input::from_json_slice(data) {
        Ok(mut input) => {
            assert!(is_object);
            read_all(&mut input, 0);
            let mut input = Input::from_json_slice(data).unwrap();
            let _ = rally::petition::sign::SignatureRequest::parse(&mut input);
        }
        Err(e) => {
            assert!(!is_object);
            assert_eq!(e.code(), "invalid_json");
        }
    }
});
