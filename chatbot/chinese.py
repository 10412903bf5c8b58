"""Chinese text for the claim check (`chatbot.claims`): numerals as digits, words, function words and negations.

Chinese has no spaces, so a reply's words come from jieba's dictionary segmentation (`rjieba`, the Rust port the
knowledge base also uses; HMM off: the same text always splits the same way, in a reply as in its source).
Numbers written with characters (三天, 十五元, 两周, 二十四小时) become ASCII digits before anything else
looks at them, as full-width digits (１５) already do under NFKC, so "3天" in a source and "三天" in a reply
are one quantity. Units after a number become the English unit words the
claim check already compares ("3个工作日" -> "3 business days"), so a Chinese reply and an English source agree too.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from knowledge_base.text import HAN_RUN as _HAN_RUN


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_POWERS = {"十": 10, "百": 100, "千": 1000, "万": 10_000}
# Chinese units after a number, longest first, as the English unit the claim check compares (None: a counter
# such as 个/件/次, kept as written).
_UNITS = {
    "个工作日": "business day", "工作日": "business day", "个自然日": "calendar day", "自然日": "calendar day",
    "个小时": "hour", "小时": "hour", "钟头": "hour", "分钟": "minute", "秒钟": "second", "秒": "second",
    "个星期": "week", "星期": "week", "礼拜": "week", "周": "week", "个月": "month", "月": "month", "年": "year",
    "天": "day", "日": "day", "元": "yuan", "块钱": "yuan", "块": "yuan", "人民币": "yuan", "折": "tenths",
    "公里": "kilometre", "千米": "kilometre", "米": "metre", "公斤": "kilogram", "千克": "kilogram", "克": "gram",
    "岁": "year old", "次": "time", "件": "item", "个": "piece", "张": "sheet", "人": "person", "位": "person",
    "晚": "night", "分": "point", "%": "%",
}  # fmt: skip
_NUMERAL = "零〇一二两三四五六七八九十百千万"
_UNIT_ALT = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
# A numeral run becomes digits before a unit ("三天", "十五元", "两周"), when it is clearly a number by
# itself ("二十", "三百"), or opens a range before a unit ("三到五天"): a lone 一 elsewhere is part of a
# word (一下, 一起, 统一), and 十分 before anything but 钟 means "very".
_NUMERAL_RUN = re.compile(
    f"[{_NUMERAL}]+(?=(?:{_UNIT_ALT}))(?!分[^钟])|(?:[一二两三四五六七八九][十百千万]|十)[{_NUMERAL}]*(?!分(?!钟))"
    f"|[{_NUMERAL}]+(?=[到至~～-][{_NUMERAL}0-9]+(?:{_UNIT_ALT}))"
)
_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:到|至|~|～|-|–)\s*(\d+(?:\.\d+)?)\s*(" + _UNIT_ALT + r")"
                          r"|(\d+(?:\.\d+)?)\s*(" + _UNIT_ALT + r")")  # fmt: skip
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:到|至|~|～)\s*(\d+(?:\.\d+)?)")
_UNIT_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*(" + _UNIT_ALT + r")\s*(?:到|至|~|～|-|–)\s*(\d+(?:\.\d+)?)\s*\2")
"""A range with its unit on both ends ("1小时 - 2小时"), written once ("1-2小时")."""

NEGATIONS = _set(
    "不 没 没有 无 未 别 非 无法 不能 不可 不可以 不会 不要 不用 无需 无须 不需要 不必 未能 并非 不是 不得 禁止 "
    "暂不 不予 不再 从不 从未 尚未 还没 还没有 毫无 不行"
)
"""Words that negate a Chinese statement."""
# Words that begin with 不/没/未 but do not negate what follows.
_NOT_NEGATIONS = _set(
    "不客气 不过 不错 不断 不仅 不管 不论 不少 不久 不同 不如 不然 不但 不好意思 不止 不禁 不满 没关系 未来 未必"
)
_NEGATION_PREFIXES = ("不", "没", "未")
# Words jieba's dictionary lacks that begin with a negation character but state something positive ("无理由退货":
# returns without giving a reason); added to the segmenter so 无 is not read as "no".
_COMPOUNDS = ("无理由", "无忧", "无线", "无限", "无缝", "无门槛", "免运费", "不限", "不客气", "没关系", "不好意思")

STOPWORDS = _set("""
的 地 得 了 着 过 是 在 和 与 及 以及 或 或者 也 都 就 还 又 而 而且 并且 但 但是 可是 如果 若 假如 要是 那么 所以 因为
由于 因此 这 那 这个 那个 这些 那些 这里 那里 这儿 那儿 这样 那样 这种 那种 其 其中 该 此 之 为 被 把 对 向 从 到 给 让
使 要 想 会 能 能够 可以 可能 应该 应当 需要 须 必须 请 一下 有 很 非常 比较 更 最 太 已经 已 正在 将 将会 所 等 等等
上 下 中 里 内 外 前 后 个 些 位 种 次 如何 怎么 怎样 怎么样 什么 哪 哪个 哪里 哪些 哪儿 多少 几 为什么 是否 是不是
有没有 吗 呢 吧 啊 呀 哦 嗯 哈 嘛 啦 哟 呗 的话 我 你 您 他 她 它 我们 你们 您们 他们 她们 它们 咱们 自己 大家 各位
一 一些 一点 一个 一共 一般 一直 同时 然后 之后 之前 以后 以前 目前 现在 时候 时 方面 关于 对于 根据 按照 通过 其他
其它 另外 还有 以下 如下 上述 就是 即 即可 可 便 则 才 再 并 于 以 由 含 包括 进行 相关 具体 详细 一样 一起 只 只要
只有 只是 不过 此外 当然 比如 例如 您好 你好 谢谢 感谢 多谢 抱歉 不好意思 对不起 帮助 帮 帮忙 协助 问题 咨询 客服
服务 同事 工作人员 人工 联系 告诉 回答 回复 了解 知道 希望 欢迎 高兴 很高兴 乐意 好的 好 没问题 祝 愉快 信息 情况
资料 来源 提供 为您 给您 查询 查看 看看 看 说 问 问问 顾客 客户 亲 亲爱 放心 注意 温馨 提示 建议 尽快 稍后 马上
""")
"""Chinese function words and support-speak: they state nothing a source has to back."""

PARAPHRASES = (
    "购买 买 订购 下单",
    "收到 拿到 获得 得到",
    "退款 退钱 退还",
    "费用 价格 价钱 收费 花费 价位 票价",
    "地址 位置 地点 地方",
    "营业时间 开放时间 营业 开放",
    "电话 联系电话 电话号码 号码",
    "修改 更改 更换 改",
    "取消 撤销",
    "寄 发 寄出 发出 发货",
    "快递 包裹",
    "订单 单子",
    "账户 账号 帐户 帐号",
    "密码 口令",
    "评分 分数 评价",
)
"""Safe Chinese paraphrases: each group's words say the same thing in a support answer (the first is the key)."""
CANONICAL = {word: group.split()[0] for group in PARAPHRASES for word in group.split()}

HEDGES = _set("可能 也许 或许 通常 一般 一般来说 有时 有时候 视情况 如果 若 假如 大概 往往 多数 大多")
"""Words that make a Chinese statement conditional or uncertain."""
CONDITIONALS = _set("如果 若 假如 要是 万一 倘若 一旦")
"""Words that open a conditional clause (it states no policy either way)."""
CLAUSE_BREAKS = _set("和 但 但是 或 或者 然后 所以 而且 并且 另外 也 还 同时 以及 及")
REFERRING = _set("它 它们 这 那 这个 那个 其 该 此 这些 那些 这家 那家")
SHOP_VOICE = _set("我们 我们的 本店 我司 本公司 咱们")
LIST_JOINERS = _set("和 或 及 以及 或者 与")

_lock = threading.Lock()
_jieba = None  # a private rjieba.Jieba: the words added below stay out of the knowledge base's segmenter


def has_han(text: str) -> bool:
    """Whether `text` has Chinese characters."""
    return bool(_HAN_RUN.search(text))


def _numeral_value(run: str) -> int:
    """The value of a Chinese numeral run: 十五 -> 15, 二十四 -> 24, 两百 -> 200, 一五 -> 15 (digit by digit)."""
    if not any(c in _POWERS for c in run):
        return int("".join(str(_DIGITS[c]) for c in run))
    total, section, digit = 0, 0, 0
    for c in run:
        if c in _DIGITS:
            digit = _DIGITS[c]
        elif c == "万":
            total += (section + digit) * 10_000
            section, digit = 0, 0
        else:
            section += (digit or 1) * _POWERS[c]
            digit = 0
    return total + section + digit


def numerals_to_digits(text: str) -> str:
    """Chinese numerals that are numbers, as ASCII digits: "三到五个工作日" -> "3到5个工作日", "十五元" -> "15元"."""
    if not has_han(text):
        return text
    return _NUMERAL_RUN.sub(lambda m: str(_numeral_value(m.group())), text)


def units_to_english(text: str) -> str:
    """Numbers with a Chinese unit written as the English quantity: "3到5个工作日" -> " 3-5 business days ",
    "15元" -> " 15 yuan ", "24小时" -> " 24 hours " (spaced, so the English quantity parser reads them)."""

    def spell(match: re.Match) -> str:
        lo, hi, unit = (match.group(1), match.group(2), match.group(3)) if match.group(1) else (
            match.group(4), None, match.group(5))  # fmt: skip
        value = f"{lo}-{hi}" if hi else lo
        english = _UNITS[unit]
        if english == "%":
            return f"{value}%"
        plural = "" if value == "1" or english.endswith(("s", "old")) or english in ("yuan", "tenths") else "s"
        return f" {value} {english}{plural} "

    return _RANGE.sub(r"\1-\2", _NUMBER_UNIT.sub(spell, _UNIT_RANGE.sub(r"\1-\3\2", text)))


def _segmenter():
    global _jieba
    with _lock:
        if _jieba is None:
            import rjieba

            segmenter = rjieba.Jieba()
            for word in _COMPOUNDS:
                segmenter.add_word(word, None, None)
            _jieba = segmenter
    return _jieba


@lru_cache(maxsize=16384)
def words(run: str) -> tuple[str, ...]:
    """The words of a run of Chinese characters (jieba's dictionary, no HMM), a negation split off the word it negates
    ("不支持" -> "不", "支持"; "没有" and "无法" stay whole)."""
    out: list[str] = []
    for word in _segmenter().cut(run, False):
        if (
            len(word) > 1
            and word.startswith(_NEGATION_PREFIXES)
            and word not in NEGATIONS
            and word not in _NOT_NEGATIONS
        ):
            out.extend((word[0], word[1:]))
        else:
            out.append(word)
    return tuple(out)


def search_words(word: str) -> tuple[str, ...]:
    """The shorter dictionary words inside `word` ("免费送货" -> "免费", "送货"): a source may split it so."""
    parts = [w for w in _segmenter().cut_for_search(word, False) if w != word]
    return tuple(parts) or (word,)


def is_unit(word: str) -> bool:
    """Whether `word` is a unit or counter written after a number (天, 个工作日, 元, 次 ...)."""
    return word in _UNITS


def paraphrases(word: str) -> tuple[str, ...]:
    """`word` and the words of its `PARAPHRASES` group."""
    key = CANONICAL.get(word)
    return tuple(w for w in PARAPHRASES_BY_KEY[key]) if key else (word,)


PARAPHRASES_BY_KEY = {group.split()[0]: tuple(group.split()) for group in PARAPHRASES}
