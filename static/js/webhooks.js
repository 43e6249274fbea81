/* The copy button of a new signing secret: <button data-copy="#id" data-copied="Copied" hidden>.
   The button stays hidden without JavaScript (the secret can still be selected by hand). The
   Content-Security-Policy allows no inline script, so this lives here, loaded by the page. */
(function () {
  "use strict";

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copied(button) {
    button.textContent = button.getAttribute("data-copied") || "Copied";
    button.classList.add("copied");
  }

  function copy(button) {
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var text = source.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button); }, function () {
        selectText(source);
      });
      return;
    }
    // Plain HTTP (no Clipboard API): select the secret and ask the browser to copy the selection.
    selectText(source);
    try {
      if (document.execCommand("copy")) {
        copied(button);
      }
    } catch (error) {
      /* the secret stays selected: Ctrl+C copies it */
    }
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { copy(button); });
  });
})();
