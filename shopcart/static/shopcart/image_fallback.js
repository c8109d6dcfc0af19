// A product picture whose address fails to load (a staff image URL that is gone or mistyped) is replaced
// by the product's generated picture, named by the <img>'s data-fallback-src; once, so a failing
// fallback cannot loop. Without JavaScript the browser shows the alt text, which names the product.
"use strict";

(function () {
  const fallBack = (img) => {
    const fallback = img.dataset.fallbackSrc;
    if (fallback && img.getAttribute("src") !== fallback) {
      img.src = fallback;
    }
  };

  // Load errors do not bubble: listen in the capture phase, for every picture, lazy ones included.
  document.addEventListener(
    "error",
    (event) => {
      if (event.target instanceof HTMLImageElement) {
        fallBack(event.target);
      }
    },
    true,
  );

  // Pictures that failed before this script ran (it is deferred).
  document.querySelectorAll("img[data-fallback-src]").forEach((img) => {
    if (img.complete && img.naturalWidth === 0) {
      fallBack(img);
    }
  });
})();
