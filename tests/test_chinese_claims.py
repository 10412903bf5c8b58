"""The claim check on Chinese replies: words segmented, numbers written with characters or full-width digits read
as the same quantities as ASCII digits, Chinese negation for polarity, Chinese sentence ends for streaming.

The shop's policy text is written as a Chinese shop writes its FAQ; the travel-desk texts are CrossWOZ's system
replies (validation split, Apache-2.0); the false replies at the end were written by Qwen2.5-Coder-0.5B-Instruct
on the held-out CrossWOZ test FAQ (`chatbot eval answers`, see the README) and caught by this check.
"""

from __future__ import annotations

import pytest

from chatbot import chinese
from chatbot.claims import ClaimGate, Evidence, check_reply, split_claims

RETURNS = (
    "退货政策：商品签收后7天内可以申请无理由退货。退款会在收到退货后的3到5个工作日内退回原支付账户。"
    "定制商品不支持退货。订单满99元免运费，不满99元收取10元运费。"
)
SHOP = Evidence((RETURNS,), customer=("我想退货，多久能退款？",))


@pytest.mark.parametrize(
    "reply",
    [
        "签收后7天内可以申请无理由退货。",
        "退款会在收到退货后的三到五个工作日内退回原支付账户。",  # numerals written with characters
        "退款会在收到退货后的３到５个工作日内退回原支付账户。",  # full-width digits
        "您好！签收后七天内可以申请无理由退货，退款会在3到5个工作日内退回原支付账户。",
        "定制商品不支持退货。",
        "很抱歉，定制商品不能退货。",
    ],
)
def test_supported_chinese_replies_pass(reply):
    report = check_reply(reply, SHOP)
    assert report.ok, report.reason


def test_a_true_chinese_statement_about_something_else_does_not_answer():
    shipping = Evidence((RETURNS,), customer=("运费怎么算？",))
    assert check_reply("订单满九十九元免运费。", shipping).ok  # the amount written in characters
    gate = ClaimGate(shipping)
    assert gate.feed("订单满九十九元免运费。") == "订单满九十九元免运费。" and gate.finish() == ""
    # the same true sentence as the reply to "how soon is my refund?" answers nothing of it
    gate = ClaimGate(SHOP)
    assert gate.feed("订单满九十九元免运费。") == "" and gate.finish() == ""
    assert gate.failed and "does not answer what was asked" in gate.failure.reason


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("退款会在收到退货后的两周内退回原支付账户。", "states 2 weeks"),  # a changed duration
        ("退款会在收到退货后的3到7个工作日内退回原支付账户。", "states 3-7 business days; the sources say 3-5"),
        ("退款会在收到退货后的三到五天内退回原支付账户。", "states 3-5 days"),  # working days became days
        ("订单满五十元免运费。", "states 50 yuan"),
        ("定制商品支持退货。", "affirms what the source denies"),  # flipped polarity
        ("签收后7天内不能申请退货。", "says '不能' where the source affirms"),
        ("签收后7天内无法申请无理由退货。", "says '无法' where the source affirms"),
        ("我们还提供免费上门取件服务。", "no source mentions"),  # an invented service
        ("所有订单都免运费。", "no source mentions"),
        ("我会帮您取消订单。", "promises an action the bot cannot take"),
        ("我已经为您办理退款。", "promises an action the bot cannot take"),
    ],
)
def test_false_chinese_replies_are_rejected(reply, reason):
    report = check_reply(reply, SHOP)
    assert not report.ok and reason in report.reason, report.reason


def test_a_condition_in_the_source_is_not_a_denial():
    evidence = Evidence(("如果包裹超过7天没有送达，请联系客服。",))
    assert check_reply("如果包裹超过七天没有送达，请联系客服。", evidence).ok


def test_a_customers_own_words_may_be_echoed_but_not_as_policy():
    evidence = Evidence(("订单发货后会发送快递单号。",), customer=("我买的蓝色外套什么时候发货？订单号 20261201",))
    assert check_reply("您的蓝色外套订单 20261201 发货后会发送快递单号。", evidence).ok
    free = Evidence(("订单发货后会发送快递单号。",), customer=("发货是免费的吗？",))
    report = check_reply("是的，我们发货是免费的。", free)
    assert not report.ok and "免费" in report.reason


CROSSWOZ = Evidence(
    (
        "北京天伦王朝酒店：很抱歉，这家酒店的评分是4.5分，但是评分不能说明一切，这个酒店是豪华型，肯定让您满意，"
        "电话号码是010-58168888。",
        "如家快捷酒店(北京燕莎使馆区店)：抱歉，没有会议室。",
        "颐和园：游玩时间是3小时 - 6小时。",
        "大三元酒家：不贵，价格是210元。",
    ),
)


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        ("北京天伦王朝酒店的评分是4.5分，电话号码是010-58168888。", True),
        ("北京天伦王朝酒店的评分是4.8分。", False),
        ("北京天伦王朝酒店的电话号码是010-58168899。", False),
        ("如家快捷酒店(北京燕莎使馆区店)没有会议室。", True),
        ("如家快捷酒店(北京燕莎使馆区店)有会议室。", False),
        ("颐和园的游玩时间是三到六小时。", True),
        ("颐和园的游玩时间是3到5小时。", False),
        ("大三元酒家的价格是二百一十元。", True),
        ("大三元酒家的价格是120元。", False),
        ("大三元酒家还提供免费停车。", False),
    ],
)
def test_crosswoz_travel_desk_replies(reply, ok):
    report = check_reply(reply, CROSSWOZ)
    assert report.ok is ok, report.reason


def test_chinese_sentences_split_at_chinese_marks():
    claims = split_claims("你好。退款需要3天！可以吗？好的；谢谢")
    assert claims == ["你好。", "退款需要3天！", "可以吗？", "好的；", "谢谢"]
    assert split_claims("订单满99元免运费，不满99元收取10元运费。") == ["订单满99元免运费，不满99元收取10元运费。"]


def test_the_gate_releases_each_chinese_sentence_as_its_full_stop_arrives():
    gate = ClaimGate(SHOP)
    assert gate.feed("签收后7天内") == ""
    assert gate.feed("可以申请无理由退货。") == "签收后7天内可以申请无理由退货。"
    assert gate.feed("退款会在3到5个工作日内") == ""
    assert gate.feed("退回原支付账户。") == "退款会在3到5个工作日内退回原支付账户。"
    assert gate.feed("定制商品支持退货。") == ""
    assert gate.failed and "affirms" in gate.failure.reason


def test_a_chinese_reply_cut_off_on_a_comma_fails():
    report = check_reply("签收后7天内可以申请无理由退货，", SHOP)
    assert not report.ok and report.reason == "cut off mid-sentence"
    assert not check_reply("签收后7天内可以申请无理由退货", SHOP, complete=False).ok


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("三天", "3天"), ("十五元", "15元"), ("两周", "2周"), ("二十四小时", "24小时"), ("一百二十元", "120元"),
        ("三到五个工作日", "3到5个工作日"), ("十分钟", "10分钟"), ("一万元", "10000元"),
        # words that hold numerals but are not numbers stay as written
        ("十分方便", "十分方便"), ("稍等一下", "稍等一下"), ("统一", "统一"), ("周一至周日", "周一至周日"),
        ("千万不要", "千万不要"), ("万一丢件", "万一丢件"),
    ],
)  # fmt: skip
def test_chinese_numerals_as_digits(text, digits):
    assert chinese.numerals_to_digits(text) == digits


def test_units_read_as_the_english_quantity():
    assert chinese.units_to_english("需要3到5个工作日").split() == ["需要", "3-5", "business", "days"]
    assert chinese.units_to_english("游玩1小时 - 2小时").split() == ["游玩", "1-2", "hours"]
    assert "15 yuan" in chinese.units_to_english("运费15元")


def test_a_chinese_reply_agrees_with_an_english_source_on_quantities():
    evidence = Evidence(("Refunds are paid back within 3-5 business days.",))
    report = check_reply("退款在三到七个工作日内退回。", evidence)
    assert report.reason == "states 3-7 business days; the sources say 3-5 business days"


def test_negation_is_split_off_the_word_it_negates():
    assert chinese.words("不支持货到付款")[:2] == ("不", "支持")
    assert chinese.words("没有健身房") == ("没有", "健身房")
    assert "不客气" in chinese.words("不客气")
    assert "无理由" in chinese.words("可以申请无理由退货")


# Replies Qwen2.5-Coder-0.5B-Instruct wrote on the held-out CrossWOZ test FAQ that an earlier version of this check
# let through or caught; the texts are the model's, the sources and questions CrossWOZ's.
@pytest.mark.parametrize(
    ("source", "question", "reply", "reason"),
    [
        ("三里屯酒吧街：门票免费，感觉行不？", "收到，三里屯酒吧街家门票贵吗？", "三里屯酒吧街家门票贵。",
         "repeats the customer's message"),
        ("三里屯酒吧街：门票免费，感觉行不？", "三里屯酒吧街的门票贵不贵？", "三里屯酒吧街的门票很贵。",
         "says '贵', which only the customer said"),
        ("大鸭梨烤鸭店(旧宫店)：行啊，地址是旧宫镇商业街甲61号。", "好的，麻烦你把大鸭梨烤鸭店(旧宫店)家地址发给我。",
         "好的，麻烦你把大鸭梨烤鸭店(旧宫店)家地址发给我。", "repeats the customer's message"),
        ("如家商旅酒店(北京牡丹园地铁站店)：它的价格是512元。",
         "那如家商旅酒店(北京牡丹园地铁站店)的酒店的价格是多少，我们公司有报销范围。",
         "如家商旅酒店(北京牡丹园地铁站店)的酒店的价格是512元。我们公司有报销范围。",
         "repeats the customer's message"),
        ("北京盛世开元京宛宾馆：价格是381元，还是挺便宜的。",
         "是吗，那我就去北京盛世开元京宛宾馆吧，知道它家是什么价格吗？",
         "是的，那我就去北京盛世开元京宛宾馆吧，知道它家的价格吗？", "repeats the customer's message"),
        ("维也纳国际酒店(北京广安门店)：很容易的，你记一下啊，电话是010-85007421。",
         "我不知道维也纳国际酒店(北京广安门店)的联系电话，你能帮我弄到吗？", "我会把问题转给同事。",
         "promises an action the bot cannot take"),
    ],
)  # fmt: skip
def test_false_replies_the_chinese_model_wrote(source, question, reply, reason):
    report = check_reply(reply, Evidence((source,), customer=(question,)))
    assert not report.ok and reason in report.reason, report.reason


@pytest.mark.parametrize(
    ("source", "question", "reply"),
    [
        ("小吊梨汤(畅春园店)：地址是在颐和园路8号畅春园美食街A20A号(海淀桥北东家全味海淀体育馆)。",
         "小吊梨汤(畅春园店)的地址是在哪啊？", "小吊梨汤(畅春园店)的地址是在颐和园路8号畅春园美食街A20A号。"),
        ("三里屯酒吧街：门票免费，感觉行不？", "三里屯酒吧街的门票贵不贵？", "三里屯酒吧街的门票免费。"),
        ("速8酒店(北京潘家园路店)：抱歉，不提供国内长途电话。", "速8酒店(北京潘家园路店)提供免费国内长途电话吗？",
         "抱歉，不提供国内长途电话。"),
        ("汉拿山：营业时间是周一至周日 10:00-22:00。", "行，汉拿山的营业时间是？",
         "行，汉拿山的营业时间是周一至周日 10:00-22:00。"),
        ("大渔铁板烧(蓝色港湾店)：电话01059056235、01059056237。", "行，大渔铁板烧(蓝色港湾店)家电话是多少？",
         "行，大渔铁板烧(蓝色港湾店)家电话是01059056235、01059056237。"),
    ],
)  # fmt: skip
def test_true_replies_the_chinese_model_wrote(source, question, reply):
    """Each mirrors the customer's question, as Chinese answers do."""
    report = check_reply(reply, Evidence((source,), customer=(question,)))
    assert report.ok, report.reason


def test_an_answer_that_leaves_out_its_subject_speaks_of_its_question():
    """Qwen2.5's true "X的评分是4.5分。" for the FAQ answer "X：是4.5分，还挺高的呢。" was rejected as joining the
    rating and 4.5 from two statements: the question names what the answer's first sentence is about."""
    question, answer = (
        "贝儿多爸爸泡芙工房(东方广场店)的评分是什么？",
        "贝儿多爸爸泡芙工房(东方广场店)：是4.5分，还挺高的呢。",
    )
    assert check_reply("贝儿多爸爸泡芙工房(东方广场店)的评分是4.5分。", Evidence((question, answer))).ok
    assert not check_reply("贝儿多爸爸泡芙工房(东方广场店)的评分是4.8分。", Evidence((question, answer))).ok
