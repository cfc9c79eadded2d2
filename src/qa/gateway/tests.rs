//! The stand-in's routing and answer tests.

use super::*;

fn api_name(path: &str) -> Option<&'static str> {
    match classify(path) {
        Some(Endpoint::Api(f)) => Some(f.name),
        _ => None,
    }
}

#[test]
fn paths_of_every_family_are_classified() {
    assert_eq!(api_name("/api/creditToken"), Some("creditToken"));
    assert_eq!(api_name("/api/xp/tradeInfoXp"), Some("tradeInfoXp"));
    assert_eq!(api_name("/test_gateway/tradeInfo.api"), Some("tradeInfo"));
    assert_eq!(api_name("/test_gateway/xp/authXp.api"), Some("authXp"));
    assert!(matches!(
        classify("/kuroneko-atobarai-api/KAAAU0010APIAction_execute.action"),
        Some(Endpoint::Atobarai("KAAAU0010"))
    ));
    assert!(matches!(
        classify("/test_gateway/settleSelectAction.gw"),
        Some(Endpoint::Link)
    ));
    assert!(matches!(
        classify("/test_gateway/token/js/tokenlib.js"),
        Some(Endpoint::TokenJs {
            modal: true,
            family: Family::TestGateway
        })
    ));
    assert!(matches!(
        classify("/api/token/js/embeddedTokenLib.js"),
        Some(Endpoint::TokenJs {
            modal: false,
            family: Family::Production
        })
    ));
    assert!(matches!(
        classify("/test_gateway/token/issue"),
        Some(Endpoint::TokenIssue)
    ));
    assert!(matches!(
        classify("/webcollect-admin/menu"),
        Some(Endpoint::AdminScreen)
    ));
    for path in [
        "/api/nope",
        "/api/xp/creditToken",
        "/test_gateway/creditToken",
        "/webcollect-admin",
        "/",
    ] {
        assert!(classify(path).is_none(), "{path}");
    }
}

#[test]
fn token_libraries_have_no_placeholder_left() {
    for (modal, family) in [(false, Family::Production), (true, Family::TestGateway)] {
        let res = token_js(&Method::GET, modal, family);
        assert_eq!(res.status(), StatusCode::OK);
        let body = body_text(res);
        assert!(!body.contains("__MODAL__") && !body.contains("__ISSUE_PATH__"));
        assert!(!body.contains("/*__TOKEN_FORM__*/"));
        assert!(body.contains(&format!("var ISSUE_PATH = \"{}\";", family.issue_path())));
        assert!(body.contains("function startTokenForm(onContinue)"));
    }
}

/// The body of an in-memory response.
fn body_text(res: Response<Body>) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let bytes = rt.block_on(res.into_body().collect()).unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}
