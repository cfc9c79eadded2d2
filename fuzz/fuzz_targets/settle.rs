//! Fuzzes the settleMethod rewriters: no panic; a rewrite is idempotent and only ever changes
//! bytes inside `resultData/settleMethod` (or the `settle_method` form value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webcollect_shim::proxy::settle::rewrite::{rewrite_form, rewrite_xml};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(out)) = rewrite_xml(data, "14") {
        // Rewriting the rewritten body again changes nothing more.
        match rewrite_xml(&out, "14") {
            Ok(Some(again)) => assert_eq!(again, out),
            other => panic!("rewritten XML no longer rewrites: {other:?}"),
        }
    }
    if let Some(out) = rewrite_form(data, "14") {
        assert_eq!(rewrite_form(&out, "14").as_deref(), Some(out.as_slice()));
        assert_eq!(
            out.split(|&b| b == b'&').count(),
            data.split(|&b| b == b'&').count()
        );
    }
});
