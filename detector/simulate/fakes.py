"""Fake but well-formed personal data for statement literals.

Phone numbers use real mainland mobile prefixes, ID card numbers carry a valid
GB 11643 check digit and a real region code, bank cards pass the Luhn check, so
a detector's literal recognisers see what they would see in production. No
value is taken from a real person.
"""

from __future__ import annotations

from datetime import date

from detector.simulate.dice import Dice

SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"), ("黄", "huang"),
    ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"),
    ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"), ("罗", "luo"), ("郑", "zheng"),
    ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"),
    ("邓", "deng"), ("曹", "cao"), ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"),
    ("袁", "yuan"), ("潘", "pan"), ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"),
    ("叶", "ye"), ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"), ("任", "ren"),
    ("沈", "shen"), ("姚", "yao"), ("卢", "lu"), ("姜", "jiang"), ("崔", "cui"), ("钟", "zhong"), ("谭", "tan"),
    ("陆", "lu"), ("汪", "wang"), ("范", "fan"), ("金", "jin"),
)
GIVEN: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
    ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
    ("桂英", "guiying"), ("婷", "ting"), ("浩", "hao"), ("宇", "yu"), ("鑫", "xin"), ("欣怡", "xinyi"),
    ("子涵", "zihan"), ("梓萱", "zixuan"), ("俊杰", "junjie"), ("晨", "chen"), ("博文", "bowen"), ("思远", "siyuan"),
    ("雨桐", "yutong"), ("嘉怡", "jiayi"), ("佳琪", "jiaqi"), ("志强", "zhiqiang"), ("建华", "jianhua"),
    ("海燕", "haiyan"), ("春梅", "chunmei"), ("晓东", "xiaodong"), ("文静", "wenjing"), ("志明", "zhiming"),
    ("一鸣", "yiming"), ("丹", "dan"), ("亮", "liang"), ("斌", "bin"), ("颖", "ying"), ("倩", "qian"), ("鹏", "peng"),
    ("琳", "lin"), ("晶", "jing"), ("健", "jian"), ("凯", "kai"), ("雪", "xue"), ("辉", "hui"), ("飞", "fei"),
    ("慧", "hui"), ("玉兰", "yulan"), ("建国", "jianguo"), ("国强", "guoqiang"), ("红梅", "hongmei"),
)


class City:
    __slots__ = ("province", "name", "districts", "short")

    def __init__(self, province: str, name: str, districts: tuple[tuple[str, str], ...]) -> None:
        self.province, self.name, self.districts = province, name, districts
        self.short = name.removesuffix("市")


CITIES: tuple[City, ...] = (
    City("上海市", "上海市", (("浦东新区", "310115"), ("徐汇区", "310104"), ("闵行区", "310112"), ("静安区", "310106"), ("杨浦区", "310110"))),
    City("浙江省", "杭州市", (("西湖区", "330106"), ("余杭区", "330110"), ("滨江区", "330108"), ("拱墅区", "330105"))),
    City("浙江省", "宁波市", (("鄞州区", "330212"), ("海曙区", "330203"))),
    City("江苏省", "南京市", (("玄武区", "320102"), ("鼓楼区", "320106"), ("江宁区", "320115"))),
    City("江苏省", "苏州市", (("姑苏区", "320508"), ("吴中区", "320506"))),
    City("广东省", "广州市", (("天河区", "440106"), ("海珠区", "440105"), ("白云区", "440111"))),
    City("广东省", "深圳市", (("南山区", "440305"), ("福田区", "440304"), ("宝安区", "440306"))),
    City("北京市", "北京市", (("朝阳区", "110105"), ("海淀区", "110108"))),
    City("四川省", "成都市", (("武侯区", "510107"), ("锦江区", "510104"))),
    City("湖北省", "武汉市", (("武昌区", "420106"), ("洪山区", "420111"))),
    City("安徽省", "合肥市", (("蜀山区", "340104"),)),
    City("福建省", "厦门市", (("思明区", "350203"),)),
)
PROVINCES: tuple[str, ...] = tuple(dict.fromkeys(c.province for c in CITIES))
ROADS = ("人民路", "中山路", "解放路", "建设路", "和平路", "文三路", "世纪大道", "长江路", "黄河路", "新华路", "学院路",
         "科技路", "滨江大道", "南京路", "延安路", "光明路", "幸福路", "胜利路", "东方路", "江南大道", "天目山路", "淮海路")
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
                   "156", "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "183", "185", "186",
                   "187", "188", "189", "198", "199")
CARD_BINS = (("622848", 19), ("621700", 19), ("622202", 19), ("621226", 19), ("622588", 16), ("621483", 16),
             ("622908", 18), ("625965", 16), ("621661", 19))
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
CUSTOMERS = 2_400_000


def person_name(d: Dice) -> str:
    return d.pick(SURNAMES)[0] + d.pick(GIVEN)[0]


def surname(d: Dice) -> str:
    return d.pick(SURNAMES)[0]


def phone(d: Dice) -> str:
    return f"{d.pick(MOBILE_PREFIXES)}{d.below(100_000_000):08d}"


def id_card(d: Dice, region: str | None = None) -> str:
    if region is None:
        region = d.pick(d.pick(CITIES).districts)[1]
    born = date.fromordinal(date(1958, 1, 1).toordinal() + d.below(17000))
    body = f"{region}{born:%Y%m%d}{d.below(1000):03d}"
    return body + check_digit(body)


def check_digit(body17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(body17, _ID_WEIGHTS)) % 11]


def bank_card(d: Dice) -> str:
    bin_, length = d.pick(CARD_BINS)
    body = bin_ + "".join(str(d.below(10)) for _ in range(length - len(bin_) - 1))
    return body + luhn_digit(body)


def luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        n = int(c)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


def address(d: Dice, city: City | None = None) -> str:
    city = city or d.pick(CITIES)
    district = d.pick(city.districts)[0]
    head = city.name if city.province == city.name else city.province + city.name
    n = d.between(1, 1800)
    if d.chance(0.7):
        return f"{head}{district}{d.pick(ROADS)}{n}弄{d.between(1, 60)}号{d.between(1, 32)}0{d.between(1, 4)}室"
    return f"{head}{district}{d.pick(ROADS)}{n}号{d.between(1, 20)}幢{d.between(1, 6)}单元{d.between(1, 30)}0{d.between(1, 6)}室"


def customer_id(d: Dice) -> int:
    """Recent customers are looked up more often than old ones."""
    return 1 + int(CUSTOMERS * d.u() ** 0.6)


_YMD: dict[int, int] = {}


def _ymd(ordinal: int) -> int:
    v = _YMD.get(ordinal)
    if v is None:
        day = date.fromordinal(ordinal)
        v = _YMD[ordinal] = day.year * 10000 + day.month * 100 + day.day
    return v


def order_id(d: Dice, day: date) -> int:
    """Order ids grow with time: yyyymmdd plus a sequence."""
    back = min(int(d.expo(6)), 180)
    return _ymd(day.toordinal() - back) * 100000 + d.below(100000)


def order_no(d: Dice, day: date) -> str:
    return f"SO{order_id(d, day)}{d.below(100):02d}"


def waybill_no(d: Dice) -> str:
    return f"ZX{7_310_000_000_000 + d.below(90_000_000_000):013d}"


def courier_id(d: Dice) -> int:
    return d.between(20000, 33999)


def payment_id(d: Dice) -> int:
    return 41_000_000 + d.below(29_000_000)


def ticket_id(d: Dice) -> int:
    return 8_600_000 + d.below(5_200_000)
