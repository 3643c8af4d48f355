"""The binding page in a real headless browser (Debian's chromium and chromium-driver, which
`make test` and `.ci/run` install when missing), driven with selenium: the follower's WeChat
browser opens the link, is authorised by the simulator, types the card, the phone and the code
the sandbox sent, and is bound."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bxprocs import Proc, SimOptions
from bxtest import APPID, Bankwx
from pagekit import browse_url, debit_card, latest_code

from bankwx_cli.sim.driver import SimDriver

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=5)


@pytest.fixture
def chrome() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if CHROMIUM is None or DRIVER is None:
        pytest.skip(
            "no headless browser: Debian's chromium and chromium-driver are not installed and "
            "could not be (apt-get install -y chromium chromium-driver, as `make test` tries)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-proxy-server", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=DRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def submit(chrome: Any) -> None:
    """Press the form's button and wait for the next page: a click returns before the browser
    has navigated, so reading the title at once could still see the old page. The old page is
    marked first; the next one is the document without the mark, loaded."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    chrome.execute_script("document.documentElement.dataset.submitted = '1'")
    chrome.find_element(By.CSS_SELECTOR, 'button[name="submit"]').click()

    def loaded(driver: Any) -> bool:
        return bool(driver.execute_script(
            "return document.readyState === 'complete' && "
            "!document.documentElement.dataset.submitted"
        ))  # fmt: skip

    WebDriverWait(chrome, 30, ignored_exceptions=(WebDriverException,)).until(loaded)


def test_a_follower_binds_in_a_headless_browser(
    chrome: Any,
    paged: tuple[Bankwx, Proc, str],
    sim: SimDriver,
    control: httpx.Client,
    customers: list[dict[str, Any]],
) -> None:
    from selenium.webdriver.common.by import By

    bx, _, url = paged
    openid = sim.pick_openid(APPID)
    customer = customers[2]
    card = debit_card(customer)

    chrome.get(browse_url(sim.base_url, openid, url))
    assert chrome.title == "绑定银行卡", chrome.page_source
    assert chrome.current_url.startswith(url + "?code=")
    chrome.find_element(By.NAME, "card").send_keys(card)
    chrome.find_element(By.NAME, "phone").send_keys(customer["phone"])
    submit(chrome)
    assert chrome.title == "输入验证码", chrome.page_source
    assert customer["phone"] not in chrome.page_source

    # a wrong code first: the form again, with the reason
    chrome.find_element(By.NAME, "code").send_keys("000000")
    code = latest_code(control, customer["phone"])
    if code == "000000":  # pragma: no cover - one draw in a million
        pytest.skip("the sandbox drew 000000")
    submit(chrome)
    assert chrome.title == "输入验证码" and "验证码不正确" in chrome.page_source

    chrome.find_element(By.NAME, "code").send_keys(code)
    submit(chrome)
    assert chrome.title == "绑定成功", chrome.page_source
    assert f"尾号{card[-4:]}" in chrome.page_source
    assert card not in chrome.page_source

    shown = json.loads(bx("follower", "show", openid, "--format", "json").stdout)
    assert shown["binding"]["customer_id"] == customer["id"]
    assert shown["binding"]["card"] == f"****{card[-4:]}"
