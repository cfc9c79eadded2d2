//! Fuzzes the admin API's JSON body (`POST /drills`) and the journal's form reading: any input
//! is accepted within the limits or refused, never a panic; and no accepted drill breaks them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webcollect_shim::journal::fields;
use webcollect_shim::state::input::DrillRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = DrillRequest::parse(data) {
        // What parse accepted, check accepts: the three callers (API, CLI, restore) agree.
        assert!(request.check().is_ok(), "{request:?}");
        assert!(!request.services.is_empty());
        if let Some(id) = &request.id {
            assert!(id.len() <= 64 && !id.chars().any(char::is_control), "{id:?}");
        }
        if let Some(title) = &request.title {
            assert!(title.chars().count() <= 200, "{title:?}");
            assert!(!title.chars().any(char::is_control), "{title:?}");
        }
    }
    // The same bytes as a form body, cut or whole: the kept values are short and clean.
    for complete in [true, false] {
        let form = fields::form(data, complete);
        for value in [form.function_div, form.trader_code, form.order_no]
            .into_iter()
            .flatten()
        {
            let value = value.as_str();
            assert!(!value.is_empty() && value.len() <= fields::MAX_VALUE, "{value:?}");
            assert!(!value.chars().any(char::is_control), "{value:?}");
        }
    }
    let _ = fields::codes(data);
});
