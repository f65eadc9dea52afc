/* Login page: the form works without script; this only says why the last
   attempt failed (/login?error=1: wrong name or password, the same answer for
   both; HTTP 429: too many failures, rate-limited by the server). */
'use strict';
(function () {
  var msg = document.getElementById('login-msg');
  var nav = performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
  var status = nav && nav.responseStatus;
  if (status === 429) {
    msg.textContent = 'Too many failed attempts: wait a few minutes, then try again.';
    msg.hidden = false;
  } else if (new URLSearchParams(location.search).get('error')) {
    msg.textContent = 'Wrong operator name or password.';
    msg.hidden = false;
  }
})();
