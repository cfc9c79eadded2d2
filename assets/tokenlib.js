/*
 * webcollect-shim maintenance stand-in for the クロネコwebコレクト token library.
 * This is NOT Yamato's library. It is served by webcollect-shim only while a maintenance
 * window is active: it never issues a token, never sends card data anywhere and never
 * logs card data; createToken always fails with the maintenance error.
 */
(function (window, document) {
  "use strict";

  var ERROR_CODE = __ERROR_CODE__;
  var ERROR_MSG = __ERROR_MSG__;
  var MODAL = __MODAL__;

  function failureResponse() {
    return { errorInfo: [{ errorItem: "", errorCode: ERROR_CODE, errorMsg: ERROR_MSG }] };
  }

  function createToken(createTokenInfo, success, failure) {
    // createTokenInfo and success are deliberately ignored: no token is ever issued.
    if (typeof failure === "function") {
      window.setTimeout(function () {
        failure(failureResponse());
      }, 0);
    }
    return undefined;
  }

  var existing = window.WebcollectTokenLib;
  var lib = (existing && (typeof existing === "object" || typeof existing === "function")) ? existing : {};
  lib.createToken = createToken;
  window.WebcollectTokenLib = lib;

  if (MODAL !== true || !document) {
    return;
  }

  // ---- modal library (tokenlib.js) ----

/*__TOKEN_FORM__*/

  startTokenForm(function (card, ui) {
    // The card is ignored: nothing is written to the hidden "webcollect-token" input, no
    // callback is called and nothing is sent anywhere.
    ui.showError(ERROR_MSG);
  });
})(window, typeof document !== "undefined" ? document : null);
