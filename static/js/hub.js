/* Behaviour every page shares. The Content-Security-Policy allows no inline script, so what an
   onsubmit="" attribute would do lives here. */
(function () {
  "use strict";

  // <form data-confirm="Question?">: submitted only when the person confirms.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest ? event.target.closest("form[data-confirm]") : null;
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
})();
