  // ---- the card form of the modal library (tokenlib.js) ----
  // Shared by the shim's maintenance stand-in (assets/tokenlib.js) and the stand-in gateway's
  // library (assets/qa/tokenlib.js), which paste it into their own function scope: only what
  // 「カード情報入力完了」 does differs (startTokenForm's `onContinue`).

  var MODAL_ID = "webcollect-token-modal";
  var STYLE_ID = "webcollect-token-modal-style";
  var ERROR_ID = "webcollect-token-error";
  var SUBMIT_ID = "webcollect-token-submit";
  var BACK_ID = "webcollect-token-back";
  var LAUNCH_ID = "create-token-launch";
  var FONT_STACK = "\"Noto Sans CJK JP\", \"Noto Sans JP\", \"Hiragino Kaku Gothic ProN\", " +
    "\"Hiragino Sans\", \"Meiryo\", \"Yu Gothic\", sans-serif";

  function hasClass(el, name) {
    return !!el && typeof el.className === "string" &&
      (" " + el.className + " ").replace(/[\t\r\n\f]/g, " ").indexOf(" " + name + " ") !== -1;
  }

  function findConfigScript() {
    var cur = document.currentScript;
    if (hasClass(cur, "webcollect-token-api")) {
      return cur;
    }
    return document.querySelector ? document.querySelector("script.webcollect-token-api") : null;
  }

  // Configuration from data-* attributes (data-trader-cd, data-auth-div, data-callback, ...),
  // read while the script runs (document.currentScript is null afterwards).
  var TOKEN_CONFIG = {};
  function readConfig(script) {
    var attrs, i, a;
    if (!script || !script.attributes) {
      return;
    }
    attrs = script.attributes;
    for (i = 0; i < attrs.length; i++) {
      a = attrs[i];
      if (a.name.indexOf("data-") === 0) {
        TOKEN_CONFIG[a.name.slice(5)] = a.value;
      }
    }
  }
  readConfig(findConfigScript());

  var CSS = [
    "#" + MODAL_ID + "{position:fixed;top:0;right:0;bottom:0;left:0;z-index:2147483000;",
    "background:rgba(0,0,0,0.55);overflow-y:auto;-webkit-overflow-scrolling:touch;",
    "padding:24px 12px;box-sizing:border-box;font-family:" + FONT_STACK + ";",
    "font-size:16px;line-height:1.6;color:#333;text-align:left;}",
    "#" + MODAL_ID + " *,#" + MODAL_ID + " *::before,#" + MODAL_ID + " *::after{box-sizing:border-box;}",
    "#" + MODAL_ID + " .wts-dialog{position:relative;background:#fff;max-width:480px;width:100%;",
    "margin:0 auto;border-radius:6px;box-shadow:0 4px 24px rgba(0,0,0,0.35);padding:20px 16px 24px;}",
    "#" + MODAL_ID + " .wts-title{margin:0 0 12px;font-size:18px;font-weight:bold;color:#222;",
    "border-bottom:2px solid #222;padding-bottom:8px;}",
    "#" + ERROR_ID + "{color:#d00;font-weight:bold;margin:0 0 12px;padding:8px 10px;",
    "border:1px solid #d00;background:#fff5f5;border-radius:3px;word-wrap:break-word;overflow-wrap:break-word;",
    "word-break:auto-phrase;}",
    "#" + MODAL_ID + " .wts-field{margin:0 0 14px;}",
    "#" + MODAL_ID + " .wts-label{display:block;font-weight:bold;font-size:14px;margin:0 0 4px;color:#333;}",
    "#" + MODAL_ID + " .wts-en{font-weight:normal;color:#666;font-size:12px;margin-left:4px;}",
    "#" + MODAL_ID + " input,#" + MODAL_ID + " select{font:inherit;font-size:16px;color:#222;",
    "background:#fff;border:1px solid #999;border-radius:3px;padding:8px 10px;margin:0;}",
    "#" + MODAL_ID + " input{display:block;width:100%;}",
    "#" + MODAL_ID + " select{min-width:5.5em;}",
    "#" + MODAL_ID + " .wts-sep{display:inline-block;margin:0 8px;}",
    "#" + MODAL_ID + " .wts-short{max-width:8em;}",
    "#" + MODAL_ID + " .wts-buttons{margin-top:20px;}",
    "#" + MODAL_ID + " button{display:block;width:100%;font:inherit;font-size:16px;font-weight:bold;",
    "padding:10px 12px;margin:0 0 10px;border-radius:4px;cursor:pointer;line-height:1.4;}",
    "#" + SUBMIT_ID + "{background:#0a5fb4;color:#fff;border:1px solid #0a5fb4;}",
    "#" + SUBMIT_ID + "[disabled]{opacity:0.6;cursor:wait;}",
    "#" + BACK_ID + "{background:#fff;color:#333;border:1px solid #999;}",
    "#" + MODAL_ID + " button .wts-en{display:block;margin:0;color:inherit;font-weight:normal;font-size:12px;}"
  ].join("");

  function injectStyle() {
    var style, head;
    if (document.getElementById(STYLE_ID)) {
      return;
    }
    style = document.createElement("style");
    style.id = STYLE_ID;
    style.type = "text/css";
    style.appendChild(document.createTextNode(CSS));
    head = document.head || document.getElementsByTagName("head")[0] || document.documentElement;
    head.appendChild(style);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag), key, i;
    if (attrs) {
      for (key in attrs) {
        if (Object.prototype.hasOwnProperty.call(attrs, key)) {
          node.setAttribute(key, attrs[key]);
        }
      }
    }
    if (children) {
      for (i = 0; i < children.length; i++) {
        if (typeof children[i] === "string") {
          node.appendChild(document.createTextNode(children[i]));
        } else if (children[i]) {
          node.appendChild(children[i]);
        }
      }
    }
    return node;
  }

  function labelFor(forId, ja, en) {
    return el("label", { "for": forId, "class": "wts-label" }, [ja + " ", el("span", { "class": "wts-en" }, [en])]);
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function monthSelect() {
    var s = el("select", { id: "webcollect-token-exp-month", name: "cardExpMonth", autocomplete: "cc-exp-month", "aria-label": "有効期限（月） Month" }), m;
    for (m = 1; m <= 12; m++) {
      s.appendChild(el("option", { value: pad2(m) }, [pad2(m)]));
    }
    return s;
  }

  function yearSelect() {
    var s = el("select", { id: "webcollect-token-exp-year", name: "cardExpYear", autocomplete: "cc-exp-year", "aria-label": "有効期限（年） Year" });
    var y0 = new Date().getFullYear(), y, yy;
    for (y = y0; y <= y0 + 15; y++) {
      yy = pad2(y % 100);
      s.appendChild(el("option", { value: yy }, [yy]));
    }
    return s;
  }

  function value(id) {
    var input = document.getElementById(id);
    return input ? String(input.value) : "";
  }

  // What the shopper typed, in createToken's terms (cardExp is MMYY).
  function readCard() {
    return {
      cardNo: value("webcollect-token-card-no").replace(/[\s-]/g, ""),
      cardOwner: value("webcollect-token-card-owner"),
      cardExp: value("webcollect-token-exp-month") + value("webcollect-token-exp-year"),
      securityCode: value("webcollect-token-security-code")
    };
  }

  function buildModal(ui) {
    var error = el("div", { id: ERROR_ID, role: "alert", "aria-live": "assertive" }, []);
    error.style.display = "none";

    var form = el("form", { id: "webcollect-token-form", autocomplete: "on", novalidate: "novalidate" }, [
      error,
      el("div", { "class": "wts-field" }, [
        labelFor("webcollect-token-card-no", "カード番号", "Card Number"),
        el("input", { id: "webcollect-token-card-no", name: "cardNo", type: "text", inputmode: "numeric",
          autocomplete: "cc-number", maxlength: "16", spellcheck: "false" }, null)
      ]),
      el("div", { "class": "wts-field" }, [
        labelFor("webcollect-token-card-owner", "カード名義人", "Card holder's name"),
        el("input", { id: "webcollect-token-card-owner", name: "cardOwner", type: "text",
          autocomplete: "cc-name", maxlength: "50", autocapitalize: "characters", spellcheck: "false" }, null)
      ]),
      el("div", { "class": "wts-field" }, [
        labelFor("webcollect-token-exp-month", "有効期限", "Expiration date (Month/Year)"),
        el("div", null, [monthSelect(), el("span", { "class": "wts-sep" }, ["/"]), yearSelect()])
      ]),
      el("div", { "class": "wts-field" }, [
        labelFor("webcollect-token-security-code", "セキュリティコード", "Security Code"),
        el("input", { id: "webcollect-token-security-code", name: "securityCode", type: "text", inputmode: "numeric",
          autocomplete: "cc-csc", maxlength: "4", "class": "wts-short", spellcheck: "false" }, null)
      ]),
      el("div", { "class": "wts-buttons" }, [
        el("button", { id: SUBMIT_ID, type: "submit" }, ["カード情報入力完了 ", el("span", { "class": "wts-en" }, ["Continue"])]),
        el("button", { id: BACK_ID, type: "button" }, ["戻る ", el("span", { "class": "wts-en" }, ["Back"])])
      ])
    ]);

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      // A second press while a token is on its way would issue a second token.
      if (form.querySelector("#" + SUBMIT_ID).disabled) {
        return;
      }
      ui.onContinue(readCard(), ui);
    }, false);
    form.querySelector("#" + BACK_ID).addEventListener("click", function (e) {
      e.preventDefault();
      closeModal();
    }, false);

    // lang="ja" whatever the merchant page says: Japanese glyph forms and line breaking.
    var overlay = el("div", { id: MODAL_ID, lang: "ja", role: "dialog", "aria-modal": "true", "aria-labelledby": "webcollect-token-modal-title" }, [
      el("div", { "class": "wts-dialog" }, [
        el("p", { id: "webcollect-token-modal-title", "class": "wts-title" }, ["クレジットカード情報入力"]),
        form
      ])
    ]);
    return overlay;
  }

  function showError(text) {
    var error = document.getElementById(ERROR_ID);
    if (error) {
      error.textContent = text;
      error.style.display = "block";
    }
  }

  function setBusy(busy) {
    var submit = document.getElementById(SUBMIT_ID);
    if (submit) {
      submit.disabled = !!busy;
    }
  }

  var previousFocus = null;

  function closeModal() {
    var m = document.getElementById(MODAL_ID);
    if (m && m.parentNode) {
      // Remove the whole form so no card data lingers in the page.
      m.parentNode.removeChild(m);
    }
    if (previousFocus && typeof previousFocus.focus === "function") {
      try { previousFocus.focus(); } catch (ignore) { /* element may be gone */ }
    }
    previousFocus = null;
  }

  function openModal(ui) {
    var m, first;
    injectStyle();
    m = document.getElementById(MODAL_ID);
    if (m && m.parentNode) {
      m.parentNode.removeChild(m);
    } else {
      previousFocus = document.activeElement;
    }
    m = buildModal(ui);
    (document.body || document.documentElement).appendChild(m);
    first = document.getElementById("webcollect-token-card-no");
    if (first && typeof first.focus === "function") {
      try { first.focus(); } catch (ignore) { /* not focusable */ }
    }
  }

  function findLaunch(target) {
    var n = target;
    while (n && n !== document) {
      if (n.id === LAUNCH_ID) {
        return n;
      }
      n = n.parentNode;
    }
    return null;
  }

  // Opens the card form when #create-token-launch is clicked. 「カード情報入力完了」 calls
  // onContinue(card, ui) with what was typed; ui has showError(text), setBusy(busy) and close().
  function startTokenForm(onContinue) {
    var ui = { onContinue: onContinue, showError: showError, setBusy: setBusy, close: closeModal };

    function onDocumentClick(e) {
      if (!findLaunch(e.target)) {
        return;
      }
      e.preventDefault();
      openModal(ui);
    }

    function onKeyDown(e) {
      if ((e.key === "Escape" || e.key === "Esc" || e.keyCode === 27) && document.getElementById(MODAL_ID)) {
        closeModal();
      }
    }

    function bind() {
      // Guard against the library being included twice.
      if (window.__webcollectShimModalBound) {
        return;
      }
      window.__webcollectShimModalBound = true;
      // Delegated on document, so a #create-token-launch element added later also works.
      document.addEventListener("click", onDocumentClick, false);
      document.addEventListener("keydown", onKeyDown, false);
    }

    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", bind, false);
    } else {
      bind();
    }
  }
