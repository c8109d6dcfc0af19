// A live count under each field with data-max-length ("1,234 of 5,000 characters"), and no sending
// while a field is over its limit: the staff see the limit as they type or paste, before the server
// has to refuse the text. Without JavaScript the server's field error says the same, with the text kept.
"use strict";

(function () {
  const format = (n) => n.toLocaleString("en-US");

  document.querySelectorAll("[data-max-length]").forEach((field) => {
    const limit = Number(field.dataset.maxLength);
    const counter = document.createElement("div");
    counter.id = `${field.id}_count`;
    counter.className = "char-count";
    counter.setAttribute("aria-live", "polite");
    field.insertAdjacentElement("afterend", counter);
    const described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    field.setAttribute("aria-describedby", [...described, counter.id].join(" "));

    // What the server counts: characters (not UTF-16 units), a line break as one.
    const length = () => [...field.value.replace(/\r\n/g, "\n")].length;
    const update = () => {
      const count = length();
      const over = count - limit;
      counter.textContent =
        `${format(count)} of ${format(limit)} characters` + (over > 0 ? `: ${format(over)} too many` : "");
      counter.classList.toggle("over", over > 0);
      field.setAttribute("aria-invalid", over > 0 ? "true" : "false");
    };
    field.addEventListener("input", update);
    update();

    field.form.addEventListener("submit", (event) => {
      if (length() > limit) {
        event.preventDefault();
        counter.textContent = `Use at most ${format(limit)} characters; this has ${format(length())}. Nothing was sent.`;
        field.focus();
      }
    });
  });
})();
