// Embedded Signup's browser half: Meta's JS SDK opens the signup popup; its session-info message names the
// WABA and number picked, FB.login's answer carries the one-time code; the form posts both to our server,
// which does the exchange, registration and subscription.
(function () {
  const button = document.getElementById("su-launch");
  if (!button) return;
  const status = document.getElementById("su-status");
  const form = document.getElementById("signup-form");
  window.addEventListener("message", (event) => {
    if (!/facebook\.com$/.test(new URL(event.origin).hostname)) return;
    try {
      const data = typeof event.data === "string" ? JSON.parse(event.data) : event.data;
      if (data && data.type === "WA_EMBEDDED_SIGNUP" && data.data) {
        document.getElementById("su-waba").value = data.data.waba_id || "";
        document.getElementById("su-phone").value = data.data.phone_number_id || "";
      }
    } catch (e) { /* not ours */ }
  });
  window.fbAsyncInit = function () {
    window.FB.init({ appId: button.dataset.appId, autoLogAppEvents: true, xfbml: false, version: button.dataset.version });
  };
  const sdk = document.createElement("script");
  sdk.src = "https://connect.facebook.net/en_US/sdk.js"; sdk.async = true; sdk.defer = true; sdk.crossOrigin = "anonymous";
  document.head.append(sdk);
  button.addEventListener("click", () => {
    if (!form.reportValidity()) return;
    if (!window.FB) { status.textContent = button.dataset.loading; return; }
    window.FB.login((response) => {
      if (response.authResponse && response.authResponse.code) {
        document.getElementById("su-code").value = response.authResponse.code;
        form.submit();
      } else {
        status.textContent = button.dataset.unfinished;
      }
    }, { config_id: button.dataset.configId, response_type: "code", override_default_response_type: true,
         extras: { setup: {}, sessionInfoVersion: "3" } });
  });
})();
