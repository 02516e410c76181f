// The "New journey" form: only the parts of the chosen trigger kind are shown ([data-trigger-kinds]); the
// rest stay in the form, empty or ignored (the server builds the trigger from the kind).
(function () {
  "use strict";
  const form = document.getElementById("new-journey-form");
  if (!form) return;
  const kind = form.querySelector("[name=trigger_kind]");
  const show = function () {
    form.querySelectorAll("[data-trigger-kinds]").forEach(function (part) {
      part.hidden = part.dataset.triggerKinds.split(" ").indexOf(kind.value) < 0;
    });
  };
  kind.addEventListener("change", show);
  show();
})();
