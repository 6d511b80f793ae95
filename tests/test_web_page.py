"""The web page end to end: headless Debian Chromium (Playwright, never a browser download) against a real
`fashionlens serve` on a free port with a temporary SQLite catalogue seeded from the samples.

Screenshots of each view are saved in `artifacts/screenshots/` as test artefacts.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import SAMPLES, STREET, served

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("FASHIONLENS_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TOKEN = "web-test-token"
READ_TOKEN = "web-read-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str):
    if os.environ.get("CI"):  # CI installs Chromium (make test): missing it there is a failure, not a skip
        pytest.fail(f"{reason} (CI must run the browser tests)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(tmp_path_factory.mktemp("web"), "--seed", str(SAMPLES), env={"FASHIONLENS_API_TOKEN": TOKEN, "FASHIONLENS_READ_TOKENS": READ_TOKEN}) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (make test installs it)")
    if not CHROMIUM.is_file():
        _unavailable(f"no Chromium at {CHROMIUM}: install Debian's 'chromium' package (make test does, as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def opened(browser, base: str):
    """The page of the server at `base`, its token given; fails if the page raised."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(30_000)
    page.goto("/")
    give_token(page, TOKEN)
    page.wait_for_selector("#photo-file")
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture
def page(browser, server):
    with opened(browser, server) as page:
        yield page


def give_token(page, token: str) -> None:
    """The page asks for the token it needs (the server says so in /v1/health); type it in."""
    page.wait_for_selector("#token-form:not([hidden])")
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def wait_until(page, expression: str, timeout: float = 30) -> None:
    """Poll a JavaScript expression from here: the page's policy forbids the string evaluation that Playwright's
    own `wait_for_function` does inside the page, and the tests keep that policy on."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for: {expression}"
        page.wait_for_timeout(100)


# the images under a selector that are on screen have loaded (lazy ones below the fold load only when scrolled to)
IMAGES_LOADED = ("[...document.querySelectorAll('{} img')].filter((i) => i.getBoundingClientRect().top < innerHeight)"
                 ".every((i) => i.complete && i.naturalWidth > 0)")


def analyse_upload(page, photo: Path) -> dict:
    with page.expect_response(lambda r: r.url.endswith("/v1/analyze") and r.request.method == "POST") as answer:
        page.set_input_files("#photo-file", str(photo))
    assert answer.value.status in (200, 201), answer.value.text()
    page.wait_for_selector(".result")
    return answer.value.json()


def drawn_boxes(page) -> list[dict]:
    """Each visible box's label and its place in the photo's own pixels, read back from the page's layout."""
    return page.evaluate("""() => {
        const img = document.querySelector('.stage img').getBoundingClientRect();
        const result = document.querySelector('.result');
        return [...document.querySelectorAll('.box:not([hidden])')].map((el) => {
            const r = el.getBoundingClientRect();
            return {index: Number(el.dataset.index), label: el.dataset.label, score: Number(el.dataset.score),
                    box: [r.left - img.left, r.top - img.top, r.right - img.left, r.bottom - img.top], width: img.width};
        });
    }""")


def assert_boxes_match(page, analysis: dict) -> None:
    boxes = sorted(drawn_boxes(page), key=lambda b: b["index"])  # drawn largest first, smaller ones on top
    assert len(boxes) == len(analysis["items"]) > 0
    scale = boxes[0]["width"] / analysis["width"]
    for drawn, item in zip(boxes, analysis["items"], strict=True):
        assert drawn["label"] == item["label"] and drawn["score"] == pytest.approx(item["score"])
        assert drawn["box"] == pytest.approx([v * scale for v in item["box"]], abs=2.5)
    assert page.locator(".card").count() == len(analysis["items"])


def test_an_uploaded_photo_gets_a_box_per_garment_and_cards(page):
    analysis = analyse_upload(page, STREET / "ccp_0486.jpg")
    assert_boxes_match(page, analysis)
    first = analysis["items"][0]
    card = page.locator("#card-0")
    assert first["label"] in card.inner_text()
    for task, labels in first["attributes"].items():
        assert task in card.inner_text() and labels[0]["label"] in card.inner_text()
    for colour in first["colors"]:
        assert f"{colour['name']} {round(colour['fraction'] * 100)}%" in card.inner_text()
    assert card.locator(".similar img").count() == len(first["similar"]) > 0
    wait_until(page, IMAGES_LOADED.format(".similar"))
    page.hover("#box-0 > span")  # the label: a smaller box drawn over this one may cover its middle
    assert "active" in card.get_attribute("class")
    page.mouse.move(0, 0)
    assert "active" not in card.get_attribute("class")
    page.hover("#card-1")
    assert "active" in page.get_attribute("#box-1", "class")
    assert page.url.endswith(f"#/analyses/{analysis['id']}")
    shot(page, "analyse")


def test_the_score_slider_hides_weak_boxes_without_a_request(page):
    analysis = analyse_upload(page, SAMPLES / "pants_1.jpg")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/v1/analy" in r.url else None)
    top = max(g["score"] for g in analysis["items"])
    page.locator("#min-score").fill(f"{min(1.0, top + 0.01):.2f}")
    assert page.locator(".box:not([hidden])").count() == 0 and page.locator(".card:not([hidden])").count() == 0
    assert page.inner_text("#garment-count").startswith(f"0 of {len(analysis['items'])}")
    page.locator("#min-score").fill("0")
    assert page.locator(".box:not([hidden])").count() == len(analysis["items"])
    assert not requests


def test_labels_stack_by_score_the_strongest_on_top(page):
    """Issue 29: a weaker label drawn over a stronger one hid it; boxes stack by size, so labels stack on their own."""
    analyse_upload(page, STREET / "ccp_0486.jpg")
    stack = page.evaluate("""() => [...document.querySelectorAll('.box')].map((el) =>
        [Number(el.dataset.score), Number(getComputedStyle(el.firstElementChild).zIndex)])""")
    assert len(stack) >= 2 and len({z for _, z in stack}) == len(stack)
    assert [score for score, _ in sorted(stack, key=lambda s: s[1])] == sorted(score for score, _ in stack)


def test_a_dropped_photo_is_analysed(page):
    import base64

    photo = SAMPLES / "shoes_2.jpg"
    transfer = page.evaluate_handle("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'shoes_2.jpg', {type: 'image/jpeg'}));
        return transfer;
    }""", base64.b64encode(photo.read_bytes()).decode())
    with page.expect_response(lambda r: r.url.endswith("/v1/analyze")) as answer:
        page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector(".result")
    assert_boxes_match(page, answer.value.json())


def test_keyboard_reaches_the_boxes_and_their_cards(page):
    analyse_upload(page, SAMPLES / "dress_1.jpg")
    page.focus("#box-0")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.closest('.card')?.id") == "card-0"
    assert "active" in page.get_attribute("#box-0", "class")
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).map((el) => el.id || el.name)""")
    assert not unlabeled
    assert page.evaluate("[...document.images].every((i) => i.hasAttribute('alt'))")


def test_opening_a_similar_item_shows_it_and_its_own_similar_items(page):
    analysis = analyse_upload(page, SAMPLES / "shirt_1.jpg")
    hit = analysis["items"][0]["similar"][0]
    page.click(f"#card-0 .similar a[href='#/items/{hit['id']}']")
    page.wait_for_selector("#item-similar .tile")
    assert f"item {hit['id']}" in page.inner_text("h1")
    with page.expect_response(lambda r: "/v1/search" in r.url) as found:
        page.reload()
    shown = page.locator("#item-similar .tile")
    shown.first.wait_for()
    results = found.value.json()["results"]
    assert shown.count() == len(results) and all(r["id"] != hit["id"] for r in results)
    wait_until(page, IMAGES_LOADED.format("#item-similar"))
    shot(page, "item")


def test_the_catalogue_filters_and_pages(page, server):
    page.goto("/#/catalog")
    page.wait_for_selector("#catalog-grid .tile")
    assert page.locator("#catalog-grid .tile").count() == 24  # 30 seeded items, 24 a page
    page.wait_for_selector("#filter-category option[value='dress']", state="attached")
    expected = httpx.get(f"{server}/v1/items", params={"category": "dress", "limit": 100}, headers=AUTH).json()
    page.select_option("#filter-category", "dress")
    page.wait_for_url(re.compile(r"category=dress"))
    wait_until(page, f"document.querySelector('#catalog-summary')?.dataset.total === '{expected['total']}'")
    tiles = page.locator("#catalog-grid .tile")
    assert tiles.count() == expected["total"] > 0
    assert {tiles.nth(i).get_attribute("data-category") for i in range(tiles.count())} == {"dress"}
    wait_until(page, IMAGES_LOADED.format("#catalog-grid"))
    shot(page, "catalogue")
    page.goto("/#/catalog?offset=24")
    page.wait_for_selector("#catalog-grid .tile")
    assert page.locator("#catalog-grid .tile").count() == 6 and "Page 2 of 2" in page.inner_text(".pager")


def test_the_history_opens_a_past_analysis_as_it_was(page, server):
    analysis = analyse_upload(page, SAMPLES / "skirt_1.jpg")
    page.goto("/#/history")
    row = page.locator(f"#history-list a[data-id='{analysis['id']}']")
    row.wait_for()
    assert page.locator("#history-list a").first.get_attribute("data-id") == str(analysis["id"])  # newest first
    shot(page, "history")
    label = analysis["items"][0]["label"]
    total = httpx.get(f"{server}/v1/analyses", params={"label": label}, headers=AUTH).json()["total"]
    page.fill("#history-label", label)
    page.click("form[aria-label='Filter the history'] button[type=submit]")
    page.wait_for_url(re.compile(f"label={label}"))
    wait_until(page, f"document.querySelector('#history-summary')?.textContent.includes('of {total},')")
    assert page.locator("#history-list a").count() == min(total, 20)
    page.click(f"#history-list a[data-id='{analysis['id']}']")
    page.wait_for_selector(".result")
    wait_until(page, IMAGES_LOADED.format(".stage"))
    assert_boxes_match(page, analysis)
    shot(page, "history-analysis")


def test_a_file_that_is_not_an_image_shows_its_error(page, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a photo")
    page.set_input_files("#photo-file", str(bad))
    error = page.locator(".analyse .error")
    error.wait_for()
    assert "not an image" in error.inner_text()
    assert page.locator(".result").count() == 0 and page.is_enabled("#url-form button")
    shot(page, "error-not-an-image")


def test_a_refused_url_and_an_unreachable_server_are_said_in_words(page):
    page.fill("#photo-url", "http://127.0.0.1:9/photo.jpg")
    page.click("#url-form button")
    error = page.locator(".analyse .error")
    error.wait_for()
    assert "refused to fetch that URL" in error.inner_text()
    page.route("**/v1/**", lambda route: route.abort())
    page.click("#url-form button")
    wait_until(page, "document.querySelector('.analyse .error').textContent.includes('cannot be reached')")
    page.unroute("**/v1/**")


def test_adding_and_deleting_need_a_read_write_token(page, server, tmp_path):
    """With a read token the page browses and says why it cannot change anything; with the read-write token it can."""
    from PIL import Image

    page.click("#token-button")
    give_token(page, READ_TOKEN)
    page.goto("/#/catalog")
    page.wait_for_selector(".tile img")
    wait_until(page, IMAGES_LOADED.format("main"))  # images need the token too: fetched with it, shown as blobs
    photo = tmp_path / "new-item.png"
    Image.open(SAMPLES / "hat_3.jpg").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(photo)

    def add() -> None:
        page.click(".add summary")
        page.set_input_files("#add-file", str(photo))
        page.fill("#add-attributes", "category=hat\nbrand=Acme")
        page.click("#add-form button[type=submit]")

    add()
    wait_until(page, "document.querySelector('#add-form .error').textContent.length > 0")
    assert "can only read" in page.inner_text("#add-form .error")
    page.click("#token-button")
    give_token(page, TOKEN)  # the view is shown again with the new token
    page.wait_for_selector(".tile img")
    add()
    page.wait_for_selector("#add-form .notice a")
    item_id = page.get_attribute("#add-form .notice a", "href").rsplit("/", 1)[1]
    assert httpx.get(f"{server}/v1/items/{item_id}", headers=AUTH).json()["given"] == {"category": "hat", "brand": "Acme"}
    page.click("#add-form .notice a")
    page.wait_for_selector("#delete-item")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#delete-item")
    page.wait_for_url(re.compile(r"#/catalog$"))
    assert httpx.get(f"{server}/v1/items/{item_id}", headers=AUTH).status_code == 404


def test_a_refused_token_is_asked_for_again_and_kept_for_the_tab_only(browser, server):
    context = browser.new_context(base_url=server)
    page = context.new_page()
    try:
        page.goto("/#/history")
        give_token(page, "not-the-token")
        page.wait_for_selector("#token-form:not([hidden])")  # the history's request got 401: asked again
        assert "refused" in page.inner_text("#token-note")
        give_token(page, TOKEN)
        page.wait_for_selector("main section")
        assert page.evaluate("sessionStorage.getItem('fashionlens-token')") == TOKEN
        assert page.evaluate("localStorage.length") == 0 and not context.cookies()
        other = context.new_page()  # another tab has its own session: it asks again
        other.goto("/")
        other.wait_for_selector("#token-form:not([hidden])")
    finally:
        context.close()


def test_the_page_fits_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  base_url=server)
    page = context.new_page()
    try:
        page.goto("/")
        give_token(page, TOKEN)
        page.wait_for_selector("#photo-file")
        analysis = analyse_upload(page, SAMPLES / "outwear_1.jpg")
        wait_until(page, IMAGES_LOADED.format(".stage"))
        assert_boxes_match(page, analysis)
        for view in ("#/analyses/%d" % analysis["id"], "#/catalog", "#/history"):
            page.goto(f"/{view}")
            page.wait_for_selector("main section")
            wait_until(page, IMAGES_LOADED.format("main"))
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), view
        shot(page, "phone-history")
    finally:
        context.close()


def drawn_masks(page) -> list[dict]:
    """Each visible mask path's index and its bounds in the photo's own pixels, read back from the page's layout."""
    return page.evaluate("""() => {
        const img = document.querySelector('.stage img').getBoundingClientRect();
        return [...document.querySelectorAll('.masks path.mask:not([hidden])')].map((el) => {
            const r = el.getBoundingClientRect();
            return {index: Number(el.dataset.index), box: [r.left - img.left, r.top - img.top, r.right - img.left,
                    r.bottom - img.top], width: img.width, fill: getComputedStyle(el).fillOpacity,
                    stroke: getComputedStyle(el).strokeWidth, shown: getComputedStyle(el.ownerSVGElement).display !== 'none'};
        });
    }""")


def test_each_garment_mask_is_drawn_in_place_under_its_box_and_can_be_hidden(page):
    analysis = analyse_upload(page, STREET / "ccp_0486.jpg")
    with_masks = [i for i, g in enumerate(analysis["items"]) if g["polygons"]]
    assert with_masks, "the shipped parser gave this photo's garments no mask"
    masks = {m["index"]: m for m in drawn_masks(page)}
    assert sorted(masks) == with_masks
    scale = masks[with_masks[0]]["width"] / analysis["width"]
    for i in with_masks:
        xs = [v for p in analysis["items"][i]["polygons"] for v in p[0::2]]
        ys = [v for p in analysis["items"][i]["polygons"] for v in p[1::2]]
        expected = [min(xs) * scale, min(ys) * scale, max(xs) * scale, max(ys) * scale]
        assert masks[i]["box"] == pytest.approx(expected, abs=2.5)  # where the polygons say, on the photo
        # an outline: a fill would dye the garment and hide the colours its card names (issue 29)
        assert masks[i]["shown"] and float(masks[i]["fill"]) == 0 and float(masks[i]["stroke"].rstrip("px")) >= 1
        source = page.locator(f"#card-{i} .colour-source")
        assert source.get_attribute("data-source") == analysis["items"][i]["color_source"]
    shot(page, "analyse-masks")
    page.dispatch_event(f"#box-{with_masks[0]}", "mouseenter")  # pointed at: at most a faint tint
    assert 0 < float({m["index"]: m for m in drawn_masks(page)}[with_masks[0]]["fill"]) <= 0.2
    page.dispatch_event(f"#box-{with_masks[0]}", "mouseleave")
    page.locator("#show-masks").uncheck()  # boxes only
    assert not any(m["shown"] for m in drawn_masks(page)) and page.locator(".box:not([hidden])").count()
    page.locator("#show-masks").check()
    assert all(m["shown"] for m in drawn_masks(page))


def test_the_api_docs_render_with_the_network_off(browser, server):
    """Every request but those to the service itself is cut: Swagger UI comes from the package, not a CDN."""
    context = browser.new_context(base_url=server)
    outside: list[str] = []

    def only_the_service(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_service)
    page = context.new_page()
    try:
        page.goto("/docs")
        page.wait_for_selector(".swagger-ui .opblock-summary-path")
        paths = page.eval_on_selector_all(".opblock-summary-path", "(els) => els.map((e) => e.textContent)")
        assert any("/v1/analyze" in p for p in paths) and any("/v1/ready" in p for p in paths)
        assert not outside, outside
        page.goto("/redoc")  # ReDoc renders too; only its "powered by" logo is asked of its CDN, and cut
        page.get_by_text("/v1/analyze").first.wait_for()
        assert all(url.startswith("https://cdn.redoc.ly/") for url in outside), outside
    finally:
        context.close()


def test_the_search_box_finds_items_by_words_and_names_the_unknown_ones(browser, service_text_model, tmp_path):
    env = {"FASHIONLENS_API_TOKEN": TOKEN}
    with served(tmp_path, "--seed", str(SAMPLES), "--text-model", str(service_text_model), env=env) as (base, _):
        expected = httpx.post(f"{base}/v1/search", json={"text": "red zebra shirt", "top_k": 24}, headers=AUTH).json()
        with opened(browser, base) as page:
            page.goto("/#/catalog")
            page.fill("#text-query", "red zebra shirt")
            page.click("#text-search button[type=submit]")
            page.wait_for_url(re.compile(r"q=red"))
            wait_until(page, "document.querySelector('#catalog-summary')?.textContent.includes('best matching')")
            summary = page.inner_text("#catalog-summary")
            assert "zebra" in summary  # the word the model does not know is named
            tiles = page.locator("#catalog-grid .tile")
            assert [int(tiles.nth(i).get_attribute("data-id")) for i in range(tiles.count())] == [
                hit["id"] for hit in expected["results"]] != []
            shot(page, "search-by-words")
            page.fill("#text-query", "zebra quokka")  # no word known: said in words, no tiles
            page.click("#text-search button[type=submit]")
            page.locator(".catalog > .error:not(:empty)").wait_for()
            assert "zebra" in page.inner_text(".catalog > .error") and page.locator("#catalog-grid .tile").count() == 0
