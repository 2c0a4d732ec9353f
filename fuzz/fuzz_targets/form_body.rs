//! Input::from_form_slice on any bytes: always an input; every field is text and reads back as
//! itself; the signing parser never panics on it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rally::routes::input::Input;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::from_form_slice(data).expect("a form body is always read");
    let names: Vec<String> = input.field_names().map(str::to_string).collect();
    for name in &names {
        let raw = input.raw(name).map(str::to_string).expect("form fields are text");
        assert_eq!(input.text(name), raw);
        let _ = input.optional_text(name);
        let _ = input.flag(name);
        assert!(input.nested(name).is_some(), "a text field is not an object");
    }
    let mut input = Input::from_form_slice(data).unwrap();
    let _ = rally::petition::sign::SignatureRequest::parse(&mut input);
});
