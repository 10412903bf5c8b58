"""The sources' own words in Chinese: a long Chinese answer splits at 。！？； and the sentences about the question
are sent, joined without spaces."""

from __future__ import annotations

from chatbot.extract import extract_answer
from knowledge_base.records import FaqEntry, Hit

RETURNS = (
    "商品签收后7天内可以申请无理由退货。定制商品不支持退货！退款会在收到退货后的3到5个工作日内退回原支付账户。"
    "订单满99元免运费；不满99元收取10元运费。发票会在发货后通过电子邮件发送。"
)
HIT = Hit(FaqEntry("returns", "退货和退款政策", RETURNS, language="zh"), 0.9)


def test_the_sentences_about_the_question_are_sent_in_source_order():
    extract = extract_answer("退款多久能退回到我的账户？", [HIT], max_chars=30)
    assert not extract.whole
    assert "退款会在收到退货后的3到5个工作日内退回原支付账户。" in extract.text
    assert "运费" not in extract.text and " " not in extract.text
    assert len(extract.text) <= 30


def test_a_short_chinese_answer_is_sent_whole():
    extract = extract_answer("可以退货吗？", [HIT], max_chars=500)
    assert extract.whole and extract.text == RETURNS
