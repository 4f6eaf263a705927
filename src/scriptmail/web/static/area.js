// The customer area without JavaScript is complete; this only turns the confirmation pages into
// dialogs (htmx loads their content into <dialog id="dialog">) and closes them on Cancel.
"use strict";

document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = event.detail.target;
  if (dialog instanceof HTMLDialogElement && !dialog.open) {
    dialog.showModal();
    const first = dialog.querySelector("[autofocus]");
    if (first) first.focus();
  }
});

document.addEventListener("click", (event) => {
  const close = event.target.closest("[data-close-dialog]");
  const dialog = close && close.closest("dialog");
  if (dialog) {
    event.preventDefault();
    dialog.close();
  }
});

document.addEventListener("close", (event) => {
  if (event.target instanceof HTMLDialogElement) event.target.replaceChildren();
}, true);
