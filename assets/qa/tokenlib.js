/*
 * webcollect-shim STAND-IN gateway token library. This is NOT Yamato's library: it mints
 * tokens that only the stand-in gateway accepts. The card number and security code never
 * leave the page: the stand-in is told the trader code and, only for the option service
 * (stored cards), the masked number (last four digits), expiry and holder name that A03
 * shows back.
 */
(function (window, document) {
  "use strict";

  var MODAL = __MODAL__;
  // Where tokens are minted, relative to this script's own URL: through the shim when the
  // script came through it, so a window that starts mid-checkout is seen there too.
  var ISSUE_PATH = __ISSUE_PATH__;
  var TOKEN_LENGTH = 16;
  var TOKEN_INPUT = "webcollect-token";
  // The stand-in's choice (the real endpoint is not public): a failed mint is a system error.
  var SYSTEM_ERROR = "Z019999999";
  var ISSUE_FAILED = "トークンを発行できませんでした。時間をおいて再度お試しください。";

  // Captured while the script runs: document.currentScript is null afterwards.
  var self = document ? document.currentScript : null;
  var issueUrl = new URL(ISSUE_PATH, (self && self.src) || window.location.href).href;

  function field(name, value) {
    return encodeURIComponent(name) + "=" + encodeURIComponent(value == null ? "" : String(value));
  }

  // "************1111": all but the last four digits hidden, as the gateway shows stored cards.
  function masked(cardNo) {
    var digits = String(cardNo == null ? "" : cardNo).replace(/\D/g, "");
    return digits.length < 4 ? "" : new Array(digits.length - 3).join("*") + digits.slice(-4);
  }

  function bin(cardNo) {
    var digits = String(cardNo == null ? "" : cardNo).replace(/\D/g, "");
    return digits.length < 10 ? "" : digits.slice(0, 6);
  }

  function failureResponse(code) {
    return { errorInfo: [{ errorItem: "", errorCode: code || SYSTEM_ERROR, errorMsg: ISSUE_FAILED }] };
  }

  function element(xml, name) {
    var node = xml.getElementsByTagName(name)[0];
    return node ? node.textContent : "";
  }

  function createToken(createTokenInfo, success, failure) {
    var info = createTokenInfo || {};
    // The first six digits (the issuer's BIN, which may be shown beside the last four) and the masked
    // number, never the whole number: enough for the brand (cardCodeApi) and the stand-in's
    // test card numbers.
    var fields = [field("trader_code", info.traderCode), field("card_bin", bin(info.cardNo)),
      field("masking_card_no", masked(info.cardNo))];
    // Only for the option service (optServDiv 01, stored cards): what A03 will show back.
    if (String(info.optServDiv) === "01") {
      fields.push(field("member_id", info.memberId), field("card_key", info.cardKey),
        field("card_exp", info.cardExp),
        field("card_owner", info.cardOwner));
    }
    var body = fields.join("&");
    // A form POST is a "simple" cross-origin request: no preflight, and the stand-in allows
    // any origin to read the answer.
    window.fetch(issueUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
      credentials: "omit",
      cache: "no-store"
    }).then(function (res) {
      if (res.status !== 200) {
        throw new Error("HTTP " + res.status);
      }
      return res.text();
    }).then(function (text) {
      var xml = new window.DOMParser().parseFromString(text, "application/xml");
      var token = element(xml, "token");
      if (element(xml, "returnCode") === "0" && element(xml, "errorCode") === "" &&
          token.length === TOKEN_LENGTH) {
        if (typeof success === "function") {
          success({ token: token });
        }
      } else if (typeof failure === "function") {
        failure(failureResponse(element(xml, "errorCode")));
      }
    }, function () {
      if (typeof failure === "function") {
        failure(failureResponse(SYSTEM_ERROR));
      }
    });
    return undefined;
  }

  var existing = window.WebcollectTokenLib;
  var lib = (existing && (typeof existing === "object" || typeof existing === "function")) ? existing : {};
  lib.createToken = createToken;
  window.WebcollectTokenLib = lib;

  if (MODAL !== true || !document) {
    return;
  }

/*__TOKEN_FORM__*/

  // The hidden input the real library fills: #webcollect-token, else the page's
  // input[name=webcollect-token] (given the id, so "#webcollect-token" finds it), else a new one
  // in the launch button's form.
  function tokenInput() {
    var input = document.getElementById(TOKEN_INPUT), launch, form;
    if (!input) {
      input = document.querySelector("input[name='" + TOKEN_INPUT + "']");
      if (input && !input.id) {
        input.id = TOKEN_INPUT;
      }
    }
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.id = TOKEN_INPUT;
      input.name = TOKEN_INPUT;
      launch = document.getElementById(LAUNCH_ID);
      form = launch && (launch.form || (launch.closest && launch.closest("form")));
      (form || document.forms[0] || document.body).appendChild(input);
    }
    return input;
  }

  startTokenForm(function (card, ui) {
    ui.setBusy(true);
    createToken({
      traderCode: TOKEN_CONFIG["trader-cd"],
      authDiv: TOKEN_CONFIG["auth-div"],
      optServDiv: TOKEN_CONFIG["opt-serv-div"],
      memberId: TOKEN_CONFIG["member-id"],
      authKey: TOKEN_CONFIG["auth-key"],
      checkSum: TOKEN_CONFIG["check-sum"],
      cardNo: card.cardNo,
      cardOwner: card.cardOwner,
      cardExp: card.cardExp,
      securityCode: card.securityCode
    }, function (response) {
      // Close first: the form (and the card data in it) leaves the page before the merchant's
      // callback, which usually submits the order.
      ui.close();
      tokenInput().value = response.token;
      var callback = TOKEN_CONFIG.callback ? window[TOKEN_CONFIG.callback] : null;
      if (typeof callback === "function") {
        callback();
      }
    }, function (response) {
      var e = response.errorInfo[0];
      ui.setBusy(false);
      ui.showError(e.errorCode + " : " + e.errorMsg);
    });
  });
})(window, typeof document !== "undefined" ? document : null);
