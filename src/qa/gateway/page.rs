//! The stand-in's HTML pages: templates from `assets/qa/`, filled in one pass (a value is
//! never searched for placeholders), inside a shell whose banner says it is not Yamato's.

const SHELL: &str = include_str!("../../../assets/qa/page.html");
const ADMIN: &str = include_str!("../../../assets/qa/admin.html");
const RESET_DONE: &str = include_str!("../../../assets/qa/reset.html");

/// Fills `{{name}}` placeholders of `template` with `values` (already HTML: callers escape).
/// A placeholder without a value is left as written, which the tests catch.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let value = after.find("}}").and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A whole page: `title` (plain text) and `content` (HTML).
pub(crate) fn page(title: &str, content: &str) -> String {
    fill(
        SHELL,
        &[
            ("title", &crate::response::page::html_escape(title)),
            ("content", content),
        ],
    )
}

/// The merchant admin screen (加盟店管理画面) outside windows: a plain page, so that a drill
/// shows the maintenance notice replacing it.
pub(crate) fn admin_screen(path: &str, date: &str) -> String {
    let content = fill(
        ADMIN,
        &[
            ("path", &crate::response::page::html_escape(path)),
            ("date", &crate::response::page::html_escape(date)),
        ],
    );
    page(
        "クロネコwebコレクト 加盟店管理画面（スタンドイン）",
        &content,
    )
}

/// The answer to a reset: what was forgotten, and the way back to the admin screen.
pub(crate) fn reset_done(admin_screen: &str) -> String {
    let content = fill(
        RESET_DONE,
        &[("admin", &crate::response::page::html_escape(admin_screen))],
    );
    page("スタンドインをリセットしました (stand-in reset)", &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_one_pass() {
        assert_eq!(
            fill("<p>{{a}} {{b}} {{c}}</p>", &[("a", "{{b}}"), ("b", "B")]),
            "<p>{{b}} B {{c}}</p>"
        );
        assert_eq!(fill("{{a", &[("a", "x")]), "{{a");
    }

    #[test]
    fn the_admin_page_is_complete_and_escaped() {
        let html = admin_screen("/webcollect-admin/<x>", "20200420010000");
        assert!(!html.contains("{{"), "{html}");
        assert!(html.contains("/webcollect-admin/&lt;x&gt;"), "{html}");
        assert!(html.contains("<title>クロネコwebコレクト 加盟店管理画面（スタンドイン）</title>"));
    }
}
