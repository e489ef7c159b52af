"""Mandarin sentence generator: everyday templates, names, and spoken-form numbers.

Word lists combine hand-written everyday vocabulary with the most frequent nouns, verbs, adjectives and
place names of jieba's dictionary (shipped inside the ``jieba`` package), so that the character set is
broad but bounded: ``charset()`` is every character the generator can produce, which becomes the
tokenizer's Chinese pieces.
"""

# The word lists below are data; their lines stay long.
# ruff: noqa: E501

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from recipes.bundled_model import spoken_zh as sp

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏建红辉飞宇新波斌文龙春晓雪梅琳浩宁佳欣怡俊凯峰健亮博瑞晨阳"
PEOPLE = [
    "我朋友",
    "我哥哥",
    "我姐姐",
    "我妈妈",
    "我爸爸",
    "我们老师",
    "医生",
    "司机",
    "经理",
    "我老板",
    "客户",
    "邻居",
    "护士",
    "工程师",
    "学生",
    "同事",
    "孩子们",
    "老人",
    "记者",
    "厨师",
    "律师",
    "大家",
    "他",
    "我们",
    "你们",
    "他们",
    "我",
    "你",
]
PLACES = [
    "公司",
    "车站",
    "机场",
    "医院",
    "银行",
    "图书馆",
    "公园",
    "超市",
    "学校",
    "酒店",
    "饭店",
    "博物馆",
    "健身房",
    "厨房",
    "商店",
    "药店",
    "邮局",
    "市中心",
    "公交车站",
    "火车站",
    "会议室",
    "电影院",
    "大学",
    "工厂",
    "体育馆",
    "面包店",
    "停车场",
    "家里",
    "办公室",
    "北京",
    "上海",
    "广州",
    "深圳",
    "杭州",
    "南京",
    "成都",
    "武汉",
    "西安",
    "天津",
    "重庆",
    "香港",
]
THINGS = [
    "报告",
    "书",
    "信",
    "钥匙",
    "手机",
    "汽车",
    "电脑",
    "票",
    "咖啡",
    "茶",
    "包裹",
    "窗户",
    "门",
    "灯",
    "自行车",
    "相机",
    "雨伞",
    "地图",
    "菜单",
    "合同",
    "发票",
    "日程",
    "地址",
    "密码",
    "礼物",
    "花",
    "音乐",
    "电影",
    "报纸",
    "消息",
    "照片",
    "账单",
    "计划",
    "结果",
    "预算",
    "会议记录",
    "药",
    "电池",
    "衣服",
    "鞋",
    "家具",
    "打印机",
    "项目",
    "软件",
    "数据",
    "订单",
    "收据",
    "作业",
    "设备",
    "行李",
    "护照",
    "文件",
]
VERBS = [
    "买",
    "找",
    "检查",
    "打开",
    "关上",
    "修",
    "看",
    "写",
    "打扫",
    "搬",
    "卖",
    "带",
    "订",
    "付",
    "签",
    "打印",
    "分享",
    "完成",
    "准备",
    "更新",
    "取消",
    "借",
    "还",
    "送",
    "收",
    "比较",
    "换",
    "洗",
    "整理",
]
ADJ = [
    "好",
    "新",
    "旧",
    "重要",
    "容易",
    "安静",
    "便宜",
    "贵",
    "漂亮",
    "奇怪",
    "忙",
    "冷",
    "热",
    "干净",
    "简单",
    "舒服",
    "方便",
    "有意思",
    "危险",
    "安全",
    "有名",
    "特别",
    "快",
    "慢",
]
TIMES = [
    "今天",
    "明天",
    "昨天",
    "今天晚上",
    "今天早上",
    "今天下午",
    "下个星期",
    "上个星期",
    "下个月",
    "去年",
    "明年",
    "星期一",
    "星期二",
    "星期三",
    "星期四",
    "星期五",
    "星期六",
    "星期天",
    "每天",
    "现在",
    "马上",
    "等一会儿",
    "周末",
]
FOODS = [
    "米饭",
    "面条",
    "面包",
    "汤",
    "鸡肉",
    "鱼",
    "牛肉",
    "猪肉",
    "鸡蛋",
    "苹果",
    "香蕉",
    "西瓜",
    "牛奶",
    "果汁",
    "咖啡",
    "茶",
    "蛋糕",
    "饺子",
    "豆腐",
    "包子",
    "水果",
    "蔬菜",
]
UNITS = [
    "个",
    "本",
    "张",
    "件",
    "辆",
    "台",
    "公里",
    "公斤",
    "分钟",
    "小时",
    "天",
    "个月",
    "年",
    "块",
    "瓶",
    "层",
    "米",
]
TOPICS = [
    "天气",
    "新闻",
    "比赛",
    "价格",
    "这个项目",
    "这次旅行",
    "面试",
    "音乐会",
    "假期",
    "会议",
    "考试",
    "交通",
    "市场",
    "经济",
    "新政策",
]

JIEBA_DICT = Path(__file__).resolve().parents[2] / ".venv/lib/python3.11/site-packages/jieba/dict.txt"


def _jieba_words(tag: str, top: int) -> list[str]:
    """Most frequent 2-4 character words of one jieba part-of-speech tag."""
    rows = []
    if not JIEBA_DICT.exists():
        import jieba  # only on the recipe machine

        path = Path(jieba.__file__).parent / "dict.txt"
    else:
        path = JIEBA_DICT
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if (
            len(parts) == 3
            and parts[2] == tag
            and 2 <= len(parts[0]) <= 4
            and all("\u4e00" <= c <= "\u9fff" for c in parts[0])
        ):
            rows.append((int(parts[1]), parts[0]))
    rows.sort(reverse=True)
    return [w for _, w in rows[:top]]


class ZhGenerator:
    """Mandarin utterances; jieba-based lists widen the vocabulary beyond the hand-written templates."""

    def __init__(self, n_nouns: int = 900, n_verbs: int = 500, n_adj: int = 200, n_places: int = 120) -> None:
        self.nouns = _jieba_words("n", n_nouns)
        self.verbs = _jieba_words("v", n_verbs)
        self.adjs = _jieba_words("a", n_adj)
        self.places = _jieba_words("ns", n_places)
        self.slots: dict[str, Callable[[random.Random], str]] = {
            "p": self.person,
            "name": self.name,
            "place": lambda r: r.choice(PLACES + self.places if r.random() < 0.3 else PLACES),
            "thing": lambda r: r.choice(THINGS),
            "v": lambda r: r.choice(VERBS),
            "adj": lambda r: r.choice(ADJ),
            "time": lambda r: r.choice(TIMES),
            "food": lambda r: r.choice(FOODS),
            "topic": lambda r: r.choice(TOPICS),
            "n": lambda r: r.choice(self.nouns),
            "jv": lambda r: r.choice(self.verbs),
            "ja": lambda r: r.choice(self.adjs),
            "date": sp.date,
            "clock": sp.clock,
            "money": sp.money,
            "pct": sp.percent,
            "dec": sp.decimal,
            "phone": sp.phone,
            "num": sp.quantity,
            "qty": lambda r: sp.quantity(r) + r.choice(UNITS),
            "ord": lambda r: "第" + sp.cardinal(r.randint(1, 30)),
            "year": sp.year,
            "small": lambda r: sp.cardinal(r.randint(2, 10)),
        }

    def name(self, rng: random.Random) -> str:
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))

    def person(self, rng: random.Random) -> str:
        r = rng.random()
        if r < 0.3:
            return self.name(rng)
        if r < 0.4:
            return rng.choice(SURNAMES) + rng.choice(["老师", "先生", "女士", "经理", "医生"])
        return rng.choice(PEOPLE)

    def fill(self, fmt: str, rng: random.Random) -> str:
        out = fmt
        while "{" in out:
            a = out.index("{")
            b = out.index("}", a)
            out = out[:a] + self.slots[out[a + 1 : b]](rng) + out[b + 1 :]
        return out

    def sentence(self, rng: random.Random) -> str:
        r = rng.random()
        if r < 0.4:
            fmt = rng.choice(EVERYDAY)
        elif r < 0.8:
            fmt = rng.choice(NUMERIC)
        else:
            fmt = rng.choice(BROAD)
        return self.fill(fmt, rng).replace(" ", "")

    def all_words(self) -> list[str]:
        """Every fixed string the generator can emit (for the character set)."""
        fixed = [
            SURNAMES,
            GIVEN,
            "".join(EVERYDAY + NUMERIC + BROAD),
            "".join(UNITS),
            "零一二三四五六七八九十百千万两幺点第年月号日分钟半刻早上午中下晚块钱元美欧百之",
        ]
        return (
            fixed
            + PEOPLE
            + PLACES
            + THINGS
            + VERBS
            + ADJ
            + TIMES
            + FOODS
            + TOPICS
            + self.nouns
            + self.verbs
            + self.adjs
            + self.places
            + ["老师先生女士经理医生"]
        )

    def charset(self) -> list[str]:
        chars = {c for w in self.all_words() for c in w if "\u4e00" <= c <= "\u9fff"}
        return sorted(chars)


EVERYDAY = [
    "{p}{time}要去{place}",
    "{p}{time}在{place}{v}{thing}",
    "你能帮我{v}一下{thing}吗",
    "请你走之前把{thing}{v}好",
    "我{time}得去{place}",
    "我们{time}在{place}见面吧",
    "{p}在{place}等你",
    "你知道{thing}在哪儿吗",
    "我觉得{topic}很{adj}",
    "你听说{topic}了吗",
    "{p}说{topic}很{adj}",
    "我们{time}去{place}吧",
    "请告诉{p}给我回个电话",
    "我把{thing}忘在{place}了",
    "我想吃{food}和{food}",
    "我们{time}吃了{food}",
    "{p}住在{place}",
    "我{time}要坐飞机去{place}",
    "{p}不喜欢吃{food}",
    "我到处都找不到{thing}",
    "{place}几点开门",
    "去{place}要多长时间",
    "谢谢你帮我{v}{thing}",
    "外面太{adj}了",
    "{p}和{p}正在准备{thing}",
    "{p}{time}来参加聚会吗",
    "{place}的天气{time}很{adj}",
    "对不起{thing}还没准备好",
    "你把{thing}放在哪儿了",
    "他们一晚上都在聊{topic}",
    "会议改到{time}了",
    "请问这个座位有人吗",
    "{p}在{place}工作",
    "我叫{name}",
    "你好我是{name}请问有什么可以帮你",
    "{name}是我们的新经理",
    "我跟{name}谈了{topic}的事",
]

NUMERIC = [
    "会议定在{date}",
    "我的生日是{date}",
    "飞机{clock}起飞",
    "我们{time}{clock}见",
    "商店{clock}开门",
    "火车{clock}到站",
    "这个要{money}",
    "我花了{money}买{thing}",
    "一张票{money}",
    "一共是{money}",
    "价格上涨了{pct}",
    "大约{pct}的学生通过了考试",
    "手机电量还有{pct}",
    "我的电话号码是{phone}",
    "请打{phone}找我",
    "你可以打{phone}联系{name}",
    "房间号是{num}",
    "我们需要{qty}",
    "还剩{qty}",
    "距离是{dec}公里",
    "今天气温{dec}度",
    "比分是{small}比{small}",
    "他得了{ord}名",
    "公司成立于{year}",
    "她出生在{year}",
    "这件事发生在{date}",
    "截止时间是{date}{clock}",
    "他跑了{dec}公里",
    "人口增长了{pct}",
    "订单号是{phone}",
    "包裹重{dec}公斤",
    "利率涨到了{pct}",
    "公交车每{small}分钟一趟",
    "{time}卖了{qty}",
    "音乐会{date}{clock}开始",
    "现在是{clock}",
]

BROAD = [
    "{ja}的{n}",
    "这个{n}很{ja}",
    "我们需要{jv}{n}",
    "{p}正在{jv}{n}",
    "{n}和{n}都很{ja}",
    "他们决定{jv}这个{n}",
    "关于{n}的问题",
    "{place}的{n}非常{ja}",
]


def hotword_sentence(name: str, rng: random.Random, gen: ZhGenerator) -> str:
    frame = rng.choice(["请给{x}打电话", "我{time}和{x}一起吃饭", "报告是{x}写的", "{x}在{place}等你"])
    return gen.fill(frame.replace("{x}", name), rng)
