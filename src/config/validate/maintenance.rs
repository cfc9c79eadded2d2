//! `[maintenance]`: the answers' error code, statuses, token message, contact, page
//! template, and how much of a thrown-away request body is drained.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use super::Checker;
use crate::config::raw::{Mode, RawConfig};
use crate::config::{Contact, Maintenance};
use crate::response::page::Template;

const DEFAULT_ERROR_CODE: &str = "Z01000000";
const DEFAULT_TOKEN_MESSAGE: &str = "メンテナンス中です。時間をおいて再度アクセスしてください。";

impl Checker<'_> {
    pub(super) fn maintenance(&mut self, raw: &RawConfig) -> Maintenance {
        let m = &raw.maintenance;
        let error_code = match &m.error_code {
            None => DEFAULT_ERROR_CODE.to_string(),
            Some(code) => {
                let s = code.get_ref();
                if s.is_empty() || !s.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                    self.err(code.span(), "`error_code` must be non-empty ASCII letters and digits, such as \"Z01000000\"");
                }
                s.clone()
            }
        };
        let token_message = match &m.token_message {
            None => DEFAULT_TOKEN_MESSAGE.to_string(),
            Some(msg) => {
                if msg.get_ref().trim().is_empty() {
                    self.err(msg.span(), "`token_message` must not be empty");
                }
                msg.get_ref().clone()
            }
        };
        let page = match &m.page_template {
            None => Template::built_in(),
            Some(file) => {
                let path = self.base_dir.join(file.get_ref());
                // Capped, regular files only: `page_template = "/dev/zero"` is refused at
                // once instead of read until memory runs out (finding 9).
                let parsed =
                    crate::safe_file::read_config_string(&path, crate::safe_file::CONFIG_CAP)
                        .map_err(|e| format!("cannot read page template {}: {e}", path.display()))
                        .and_then(|text| {
                            Template::parse(&text)
                                .map_err(|e| format!("page template {}: {e}", path.display()))
                        });
                parsed.unwrap_or_else(|msg| {
                    self.err(file.span(), msg);
                    Template::built_in()
                })
            }
        };
        let drain_limit = match &m.drain_limit {
            None => 1 << 20,
            Some(v) => u64::try_from(*v.get_ref()).unwrap_or_else(|_| {
                self.err(
                    v.span(),
                    "`drain_limit` must be a number of bytes, 0 or more",
                );
                0
            }),
        };
        let c = &m.contact;
        let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        Maintenance {
            error_code,
            mode: m.mode.unwrap_or(Mode::Enforce),
            api_status: self.status(m.api_status.as_ref(), StatusCode::OK),
            page_status: self.status(m.page_status.as_ref(), StatusCode::SERVICE_UNAVAILABLE),
            token_message,
            contact: Contact {
                name: or(
                    &c.name,
                    "ヤマトフィナンシャル株式会社 カスタマーサービスセンター",
                ),
                free_dial: or(&c.free_dial, "0120-69-5090"),
                phone: or(&c.phone, "03-6671-8080"),
                hours: or(&c.hours, "9:00-18:00"),
                email: or(&c.email, "payment@kuronekoyamato.co.jp"),
            },
            page: Arc::new(page),
            drain_limit,
            drain_timeout: self.duration(m.drain_timeout.as_ref(), Duration::from_secs(5)),
        }
    }
}
