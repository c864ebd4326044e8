// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // The dashboard's live part: the server pushes it, rendered, whenever it changes.
  function connectLive(element) {
    var source = new EventSource(element.getAttribute("data-live"));
    source.addEventListener("dashboard", function (event) {
      element.innerHTML = event.data;
    });
  }

  // "Add another item": a copy of the last item line, emptied, with its own ids.
  function addLine(button) {
    var lines = button.closest("fieldset").querySelectorAll(".line");
    var last = lines[lines.length - 1];
    var copy = last.cloneNode(true);
    var index = lines.length;
    copy.setAttribute("data-line", String(index));
    copy.classList.remove("invalid");
    copy.querySelectorAll(".error").forEach(function (error) { error.remove(); });
    copy.querySelectorAll("select, input").forEach(function (input) {
      var stem = input.name === "item_id" ? "item_" : "quantity_";
      input.id = stem + index;
      input.value = "";
    });
    copy.querySelectorAll("label").forEach(function (label) {
      var stem = label.htmlFor.indexOf("item_") === 0 ? "item_" : "quantity_";
      label.htmlFor = stem + index;
    });
    last.after(copy);
    copy.querySelector("select").focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(connectLive);
    document.querySelectorAll("[data-add-line]").forEach(function (button) {
      button.addEventListener("click", function () { addLine(button); });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  });
})();
