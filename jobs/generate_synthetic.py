"""Generate synthetic seller-account data in the data contract's shape, with ground truth.

The four input datasets of the contract (`accounts`, `payment_instruments`, `logistics`,
`enforcement_signals`) are written into IN_DIR; the truth (`account_id`, `entity_id`) is written
outside it. The population follows the contract's section "What the data is like":

- honest single-account sellers, and honest operators with 2-5 accounts that share strong
  identifiers (legal name and id number, phone or email in different formats, bank card,
  device, ship-from address);
- counterfeit rings of 5 to 150 accounts (heavy-tailed sizes) opened in bursts under nominee
  names with fresh phones and emails; every account after a ring's first reuses 1-3 strong
  assets (instrument, device, return or warehouse address, label contact phone) of an earlier
  account of the ring, so a ring is connected through chains of shared values while most of
  its pairs share nothing; a new burst is often attached to the ring through a single value;
- hub values shared by unrelated entities: consolidator warehouses, carrier pickup points,
  mobile-carrier NAT registration IPs, payment-service collection accounts, consolidators'
  desk phones on labels, common names;
- households: two or three different entities sharing home address, surname, home IP and
  sometimes a device;
- upstream suppliers (off by default, so that datasets generated before they existed come out
  byte for byte the same; `make demo` uses 0.15):
  --supplier-share (0.15 is a realistic value) of the rings are grouped 2-4 at a time as
  the customers of one supplier: a supplier warehouse (60%; a `warehouse` row of accounts that
  have no other warehouse) or a shipping agent's label contact phone (on `ship_from` rows, in
  place of the ring's own label phone). 1-3 accounts of each customer ring use the value, so
  related rings (different operators) share one strong logistics value and nothing else. At
  20,000 accounts, seed 7 and share 0.15: 21 suppliers relating 39 ring pairs (of 336 rings).
  Scoring alone merges every such pair through the one shared value (pairwise precision
  0.9697 -> 0.9159 at 20,000); cluster control's value cut splits them there, and
  `entity_links` links them (see README, "Cluster control");
- formatting noise on every identifier, and a small, exact set of malformed rows.

Hub sizes grow with the population (N accounts; probabilities times --hub-scale): max(3, N /
20,000) consolidator warehouses (role `warehouse`, 5% of honest accounts, Zipf-popular, each
with a desk phone on 30% of its label rows), max(5, N / 4,000) pickup points (role `pickup`,
8% of all accounts), max(3, N / 40,000) NAT registration IPs (12%), max(1, N / 200,000)
collection accounts (instrument_type `other`, 1.5%), 17 common full names (3% of people).

Usage (see the data contract for the files):

    python -m jobs.generate_synthetic --output IN_DIR --accounts N [--seed 7]
        [--format parquet|csv] [--truth FILE] [--malformed-rate 0.002] [--ring-share 0.25]
        [--hub-scale 1.0] [--noise 1.0] [--supplier-share 0.0]

writes IN_DIR/{accounts,payment_instruments,logistics,enforcement_signals}.{parquet,csv}, the
truth to FILE (default IN_DIR/../truth.<format>) and, next to the truth, three files for
evaluation only: `<truth stem>_malformed` (every deliberately malformed row: dataset, row,
kind, column, account_id, csv_only), `<truth stem>_entities` (entity_id, kind single /
operator / ring, household_id, account_count) and `<truth stem>_links` (the pairs of rings
sharing a supplier: entity_id_l < entity_id_r, link_type shared_warehouse_address /
shared_contact_phone as `entity_links` names it, supplier_id).

Generation is vectorised with numpy except the ring chains, which are built account by account
in plain Python (cheap: a few random draws per ring account). The same seed and arguments give
byte-identical files. Suppliers draw from their own random stream: --supplier-share 0 gives
exactly the data the generator gave before suppliers existed; with suppliers the structure of
everything else is unchanged, but rendered values and ids move (the suppliers' addresses and
phones are drawn with everyone else's).

Example:

    >>> from jobs.generate_synthetic import generate
    >>> data = generate(accounts=1_000, seed=7)
    >>> sorted(data.truth.columns)
    ['account_id', 'entity_id']
    >>> bool(data.truth["account_id"].is_unique)
    True
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import logging
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from stdnum.cn import ric

from features import columns as cols
from jobs.logs import configure_logging
from resolution.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["GeneratorParams", "SyntheticData", "generate", "write", "main"]

# --------------------------------------------------------------------------------------------
# Vocabulary. Pinyin is written out (not computed) so that the generator does not depend on
# pypinyin's phrase segmentation; the vocabulary avoids characters whose reading depends on
# context (长, 朝, 行, 重 ...) so that pypinyin reads a Han address the way it is romanised here.
# --------------------------------------------------------------------------------------------

# (Han, pinyin, relative frequency in percent)
_SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("王", "Wang", 7.1),
    ("李", "Li", 7.0),
    ("张", "Zhang", 6.8),
    ("刘", "Liu", 5.4),
    ("陈", "Chen", 4.5),
    ("杨", "Yang", 3.1),
    ("赵", "Zhao", 2.3),
    ("黄", "Huang", 2.2),
    ("周", "Zhou", 2.1),
    ("吴", "Wu", 2.0),
    ("徐", "Xu", 1.3),
    ("孙", "Sun", 1.3),
    ("胡", "Hu", 1.3),
    ("朱", "Zhu", 1.3),
    ("高", "Gao", 1.2),
    ("林", "Lin", 1.2),
    ("何", "He", 1.2),
    ("郭", "Guo", 1.2),
    ("马", "Ma", 1.1),
    ("罗", "Luo", 0.9),
    ("梁", "Liang", 0.9),
    ("宋", "Song", 0.8),
    ("郑", "Zheng", 0.8),
    ("谢", "Xie", 0.7),
    ("韩", "Han", 0.7),
    ("唐", "Tang", 0.7),
    ("冯", "Feng", 0.7),
    ("于", "Yu", 0.6),
    ("董", "Dong", 0.6),
    ("萧", "Xiao", 0.6),
    ("程", "Cheng", 0.6),
    ("曹", "Cao", 0.6),
    ("袁", "Yuan", 0.5),
    ("邓", "Deng", 0.5),
    ("许", "Xu", 0.5),
    ("傅", "Fu", 0.5),
    ("沈", "Shen", 0.5),
    ("曾", "Zeng", 0.5),
    ("彭", "Peng", 0.5),
    ("苏", "Su", 0.5),
    ("卢", "Lu", 0.5),
    ("蒋", "Jiang", 0.5),
    ("蔡", "Cai", 0.5),
    ("贾", "Jia", 0.4),
    ("丁", "Ding", 0.4),
    ("魏", "Wei", 0.4),
    ("薛", "Xue", 0.4),
    ("叶", "Ye", 0.4),
    ("余", "Yu", 0.4),
    ("潘", "Pan", 0.4),
    ("杜", "Du", 0.4),
    ("戴", "Dai", 0.4),
    ("夏", "Xia", 0.4),
    ("钟", "Zhong", 0.4),
    ("汪", "Wang", 0.4),
    ("田", "Tian", 0.4),
    ("任", "Ren", 0.4),
    ("姜", "Jiang", 0.4),
    ("范", "Fan", 0.4),
    ("方", "Fang", 0.4),
    ("石", "Shi", 0.4),
    ("姚", "Yao", 0.4),
    ("谭", "Tan", 0.3),
    ("廖", "Liao", 0.3),
    ("邹", "Zou", 0.3),
    ("熊", "Xiong", 0.3),
    ("金", "Jin", 0.3),
    ("陆", "Lu", 0.3),
    ("郝", "Hao", 0.3),
    ("孔", "Kong", 0.3),
    ("白", "Bai", 0.3),
    ("崔", "Cui", 0.3),
    ("康", "Kang", 0.3),
    ("毛", "Mao", 0.3),
    ("邱", "Qiu", 0.3),
    ("秦", "Qin", 0.3),
    ("江", "Jiang", 0.3),
    ("史", "Shi", 0.3),
    ("顾", "Gu", 0.3),
    ("侯", "Hou", 0.3),
    ("邵", "Shao", 0.3),
    ("孟", "Meng", 0.3),
    ("龙", "Long", 0.3),
    ("万", "Wan", 0.3),
    ("段", "Duan", 0.3),
    ("钱", "Qian", 0.2),
    ("汤", "Tang", 0.2),
    ("尹", "Yin", 0.2),
    ("黎", "Li", 0.2),
    ("易", "Yi", 0.2),
    ("武", "Wu", 0.2),
    ("乔", "Qiao", 0.2),
    ("贺", "He", 0.2),
    ("赖", "Lai", 0.2),
    ("龚", "Gong", 0.2),
    ("文", "Wen", 0.2),
    ("欧阳", "Ouyang", 0.1),
    ("司马", "Sima", 0.05),
)

# Characters of given names: (Han, pinyin syllable).
_GIVEN_CHARS: tuple[tuple[str, str], ...] = (
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("娟", "juan"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀", "xiu"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("桂", "gui"),
    ("英", "ying"),
    ("华", "hua"),
    ("建", "jian"),
    ("国", "guo"),
    ("文", "wen"),
    ("辉", "hui"),
    ("玲", "ling"),
    ("鹏", "peng"),
    ("飞", "fei"),
    ("慧", "hui"),
    ("红", "hong"),
    ("宇", "yu"),
    ("浩", "hao"),
    ("晨", "chen"),
    ("欣", "xin"),
    ("婷", "ting"),
    ("雪", "xue"),
    ("琳", "lin"),
    ("博", "bo"),
    ("子", "zi"),
    ("轩", "xuan"),
    ("梓", "zi"),
    ("涵", "han"),
    ("怡", "yi"),
    ("佳", "jia"),
    ("俊", "jun"),
    ("志", "zhi"),
    ("海", "hai"),
    ("林", "lin"),
    ("波", "bo"),
    ("斌", "bin"),
    ("亮", "liang"),
    ("宁", "ning"),
    ("凯", "kai"),
    ("颖", "ying"),
    ("晓", "xiao"),
    ("小", "xiao"),
    ("春", "chun"),
    ("兰", "lan"),
    ("梅", "mei"),
    ("云", "yun"),
    ("峰", "feng"),
    ("鑫", "xin"),
    ("思", "si"),
    ("雨", "yu"),
    ("嘉", "jia"),
    ("振", "zhen"),
    ("东", "dong"),
    ("永", "yong"),
    ("金", "jin"),
    ("玉", "yu"),
    ("萍", "ping"),
    ("晶", "jing"),
    ("燕", "yan"),
    ("倩", "qian"),
    ("瑶", "yao"),
    ("阳", "yang"),
    ("天", "tian"),
    ("成", "cheng"),
    ("龙", "long"),
    ("健", "jian"),
    ("新", "xin"),
    ("丹", "dan"),
    ("莉", "li"),
)

# The most frequent full names in China: (surname Han, given Han, given pinyin), by frequency.
COMMON_NAMES: tuple[tuple[str, str, str], ...] = (
    ("张", "伟", "Wei"),
    ("王", "伟", "Wei"),
    ("王", "芳", "Fang"),
    ("李", "伟", "Wei"),
    ("李", "娜", "Na"),
    ("张", "敏", "Min"),
    ("李", "静", "Jing"),
    ("王", "静", "Jing"),
    ("刘", "伟", "Wei"),
    ("王", "秀英", "Xiuying"),
    ("张", "丽", "Li"),
    ("李", "秀英", "Xiuying"),
    ("王", "丽", "Li"),
    ("张", "静", "Jing"),
    ("王", "磊", "Lei"),
    ("李", "强", "Qiang"),
    ("刘", "洋", "Yang"),
)


@dataclass(frozen=True)
class _City:
    """A city of the address vocabulary; foreign cities are written in Latin letters only."""

    country: str
    province_han: str
    province_latin: str
    city_han: str
    city_latin: str
    postcode_prefix: str
    weight: float
    districts: tuple[tuple[str, str], ...]
    uscc_region: str
    roads: tuple[tuple[str, str], ...] = ()
    # Derived in __post_init__ (plain attributes: they are read once per rendered address).
    municipality: bool = field(init=False)
    latin_only: bool = field(init=False)
    province_forms: tuple[str, ...] = field(init=False)
    city_forms: tuple[str, ...] = field(init=False)
    han_prefixes: tuple[str, ...] = field(init=False)  # canonical "省市区" part per district

    def __post_init__(self) -> None:
        municipality = self.province_han == self.city_han
        latin_only = self.country != "CN"
        provinces: tuple[str, ...]
        cities: tuple[str, ...]
        if latin_only:
            provinces = (
                self.province_latin,
                self.province_latin.upper(),
                self.province_latin.lower(),
            )
            cities = (self.city_latin, self.city_latin.upper(), self.city_latin.lower())
        else:
            provinces = (
                self.province_han + ("市" if municipality else "省"),
                self.province_han,
                self.province_latin,
                self.province_latin.upper(),
                self.province_latin + ("" if municipality else " Province"),
            )
            cities = (
                self.city_han + "市",
                self.city_han,
                self.city_latin,
                self.city_latin.upper(),
                self.city_latin.lower(),
            )
        object.__setattr__(self, "municipality", municipality)
        object.__setattr__(self, "latin_only", latin_only)
        # Variant 0 is the canonical form; the others are what people also type.
        object.__setattr__(self, "province_forms", provinces)
        object.__setattr__(self, "city_forms", cities)
        province = "" if municipality else self.province_han + "省"
        object.__setattr__(
            self,
            "han_prefixes",
            tuple(f"{province}{self.city_han}市{han}区" for han, _ in self.districts),
        )


CITIES: tuple[_City, ...] = (
    _City(
        "CN",
        "广东",
        "Guangdong",
        "深圳",
        "Shenzhen",
        "518",
        14.0,
        (
            ("南山", "Nanshan"),
            ("福田", "Futian"),
            ("宝安", "Baoan"),
            ("龙岗", "Longgang"),
            ("罗湖", "Luohu"),
        ),
        "440300",
    ),
    _City(
        "CN",
        "广东",
        "Guangdong",
        "广州",
        "Guangzhou",
        "510",
        12.0,
        (
            ("天河", "Tianhe"),
            ("白云", "Baiyun"),
            ("越秀", "Yuexiu"),
            ("番禺", "Panyu"),
            ("海珠", "Haizhu"),
        ),
        "440100",
    ),
    _City(
        "CN",
        "广东",
        "Guangdong",
        "东莞",
        "Dongguan",
        "523",
        6.0,
        (("虎门", "Humen"), ("凤岗", "Fenggang"), ("南城", "Nancheng"), ("东城", "Dongcheng")),
        "441900",
    ),
    _City(
        "CN",
        "广东",
        "Guangdong",
        "佛山",
        "Foshan",
        "528",
        4.0,
        (("南海", "Nanhai"), ("顺德", "Shunde")),
        "440600",
    ),
    _City(
        "CN",
        "浙江",
        "Zhejiang",
        "杭州",
        "Hangzhou",
        "310",
        9.0,
        (
            ("西湖", "Xihu"),
            ("滨江", "Binjiang"),
            ("余杭", "Yuhang"),
            ("萧山", "Xiaoshan"),
            ("拱墅", "Gongshu"),
        ),
        "330100",
    ),
    _City(
        "CN",
        "浙江",
        "Zhejiang",
        "义乌",
        "Yiwu",
        "322",
        7.0,
        (("稠城", "Choucheng"), ("北苑", "Beiyuan"), ("江东", "Jiangdong")),
        "330782",
    ),
    _City(
        "CN",
        "浙江",
        "Zhejiang",
        "宁波",
        "Ningbo",
        "315",
        4.0,
        (("海曙", "Haishu"), ("鄞州", "Yinzhou"), ("北仑", "Beilun")),
        "330200",
    ),
    _City(
        "CN",
        "江苏",
        "Jiangsu",
        "苏州",
        "Suzhou",
        "215",
        5.0,
        (("姑苏", "Gusu"), ("吴中", "Wuzhong"), ("虎丘", "Huqiu")),
        "320500",
    ),
    _City(
        "CN",
        "江苏",
        "Jiangsu",
        "南京",
        "Nanjing",
        "210",
        4.0,
        (("鼓楼", "Gulou"), ("玄武", "Xuanwu"), ("秦淮", "Qinhuai")),
        "320100",
    ),
    _City(
        "CN",
        "福建",
        "Fujian",
        "厦门",
        "Xiamen",
        "361",
        3.0,
        (("思明", "Siming"), ("湖里", "Huli")),
        "350200",
    ),
    _City(
        "CN",
        "福建",
        "Fujian",
        "泉州",
        "Quanzhou",
        "362",
        3.0,
        (("丰泽", "Fengze"), ("鲤城", "Licheng")),
        "350500",
    ),
    _City(
        "CN",
        "福建",
        "Fujian",
        "莆田",
        "Putian",
        "351",
        2.0,
        (("荔城", "Licheng"), ("城厢", "Chengxiang"), ("涵江", "Hanjiang")),
        "350300",
    ),
    _City(
        "CN",
        "山东",
        "Shandong",
        "青岛",
        "Qingdao",
        "266",
        3.0,
        (("崂山", "Laoshan"), ("黄岛", "Huangdao")),
        "370200",
    ),
    _City(
        "CN",
        "湖北",
        "Hubei",
        "武汉",
        "Wuhan",
        "430",
        3.0,
        (("江汉", "Jianghan"), ("武昌", "Wuchang"), ("洪山", "Hongshan")),
        "420100",
    ),
    _City(
        "CN",
        "四川",
        "Sichuan",
        "成都",
        "Chengdu",
        "610",
        3.0,
        (("武侯", "Wuhou"), ("锦江", "Jinjiang"), ("青羊", "Qingyang")),
        "510100",
    ),
    _City(
        "CN",
        "河南",
        "Henan",
        "郑州",
        "Zhengzhou",
        "450",
        2.0,
        (("金水", "Jinshui"), ("二七", "Erqi")),
        "410100",
    ),
    _City(
        "CN",
        "北京",
        "Beijing",
        "北京",
        "Beijing",
        "100",
        5.0,
        (("西城", "Xicheng"), ("海淀", "Haidian"), ("东城", "Dongcheng"), ("丰台", "Fengtai")),
        "110000",
    ),
    _City(
        "CN",
        "上海",
        "Shanghai",
        "上海",
        "Shanghai",
        "200",
        6.0,
        (("浦东", "Pudong"), ("徐汇", "Xuhui"), ("黄浦", "Huangpu"), ("静安", "Jingan")),
        "310000",
    ),
    _City(
        "CN",
        "天津",
        "Tianjin",
        "天津",
        "Tianjin",
        "300",
        2.0,
        (("和平", "Heping"), ("南开", "Nankai")),
        "120000",
    ),
    _City(
        "HK",
        "Hong Kong",
        "Hong Kong",
        "Kowloon",
        "Kowloon",
        "",
        2.0,
        (
            ("Mong Kok", "Mong Kok"),
            ("Tsim Sha Tsui", "Tsim Sha Tsui"),
            ("Sham Shui Po", "Sham Shui Po"),
        ),
        "",
        (
            ("Nathan", "Nathan"),
            ("Argyle", "Argyle"),
            ("Canton", "Canton"),
            ("Portland", "Portland"),
            ("Shanghai", "Shanghai"),
        ),
    ),
    _City(
        "HK",
        "Hong Kong",
        "Hong Kong",
        "Hong Kong Island",
        "Hong Kong Island",
        "",
        1.0,
        (("Wan Chai", "Wan Chai"), ("Causeway Bay", "Causeway Bay")),
        "",
        (("Hennessy", "Hennessy"), ("Lockhart", "Lockhart"), ("Jaffe", "Jaffe")),
    ),
    _City(
        "US",
        "CA",
        "CA",
        "Los Angeles",
        "Los Angeles",
        "900",
        1.0,
        (("Downtown", "Downtown"), ("Koreatown", "Koreatown")),
        "",
        (("Main", "Main"), ("Spring", "Spring"), ("Wilshire", "Wilshire"), ("Olive", "Olive")),
    ),
    _City(
        "US",
        "NY",
        "NY",
        "New York",
        "New York",
        "100",
        1.0,
        (("Manhattan", "Manhattan"), ("Queens", "Queens")),
        "",
        (("Broadway", "Broadway"), ("Canal", "Canal"), ("Mott", "Mott")),
    ),
)

_CN_ROADS: tuple[tuple[str, str], ...] = (
    ("人民", "Renmin"),
    ("中山", "Zhongshan"),
    ("建设", "Jianshe"),
    ("和平", "Heping"),
    ("科技", "Keji"),
    ("文化", "Wenhua"),
    ("新华", "Xinhua"),
    ("黄河", "Huanghe"),
    ("东风", "Dongfeng"),
    ("友谊", "Youyi"),
    ("迎宾", "Yingbin"),
    ("光明", "Guangming"),
    ("青年", "Qingnian"),
    ("工业", "Gongye"),
    ("学院", "Xueyuan"),
    ("创业", "Chuangye"),
    ("金融", "Jinrong"),
    ("环城", "Huancheng"),
    ("滨河", "Binhe"),
    ("延安", "Yanan"),
    ("淮海", "Huaihai"),
    ("华强", "Huaqiang"),
    ("深南", "Shennan"),
    ("体育", "Tiyu"),
    ("湖滨", "Hubin"),
    ("江南", "Jiangnan"),
    ("民主", "Minzhu"),
    ("振兴", "Zhenxing"),
    ("幸福", "Xingfu"),
    ("商贸", "Shangmao"),
    ("国际", "Guoji"),
    ("红旗", "Hongqi"),
)
# Road kinds: (Han suffix, Latin long, Latin short).
_ROAD_KINDS: tuple[tuple[str, str, str], ...] = (("路", "Road", "Rd"), ("街", "Street", "St"))

# Birth-place codes of resident identity numbers with the first year stdnum's region table
# knows them (0: always). A person born in year Y gets a code valid in Y.
_RIC_REGIONS: tuple[tuple[int, str], ...] = (
    (0, "110102"),
    (0, "110105"),
    (0, "110107"),
    (0, "110108"),
    (0, "120101"),
    (0, "120105"),
    (0, "310101"),
    (0, "310104"),
    (0, "310106"),
    (1983, "320102"),
    (1983, "320106"),
    (1983, "330102"),
    (1983, "330105"),
    (1983, "330106"),
    (1983, "330203"),
    (1983, "350102"),
    (1983, "350104"),
    (1983, "350203"),
    (1983, "410105"),
    (1983, "420103"),
    (1983, "420106"),
    (1983, "430102"),
    (1983, "440104"),
    (1983, "440105"),
    (1983, "440111"),
    (1983, "440304"),
    (1983, "440305"),
    (1983, "610113"),
    (1985, "330702"),
    (1985, "440106"),
    (1987, "350206"),
    (1988, "370212"),
    (1988, "441302"),
    (1988, "441900"),
    (1989, "320583"),
    (1989, "330481"),
    (1989, "330782"),
    (1990, "510104"),
    (1990, "510107"),
    (1992, "310115"),
    (1992, "350582"),
    (1992, "440306"),
    (1992, "440307"),
    (1996, "330108"),
    (1997, "350503"),
    (2000, "320505"),
    (2000, "320506"),
    (2000, "440113"),
    (2001, "330109"),
    (2001, "330110"),
    (2002, "440604"),
    (2002, "440606"),
)

# Chinese mobile prefixes (all valid for phonenumbers region CN) and their weights.
_MOBILE_PREFIXES: tuple[int, ...] = (
    130,
    131,
    132,
    133,
    134,
    135,
    136,
    137,
    138,
    139,
    145,
    147,
    150,
    151,
    152,
    153,
    155,
    156,
    157,
    158,
    159,
    166,
    173,
    175,
    176,
    177,
    178,
    180,
    181,
    182,
    183,
    184,
    185,
    186,
    187,
    188,
    189,
    191,
    198,
    199,
)

EMAIL_DOMAINS: tuple[str, ...] = (
    "qq.com",
    "163.com",
    "126.com",
    "gmail.com",
    "outlook.com",
    "sina.com",
)
_EMAIL_DOMAIN_P: tuple[float, ...] = (0.35, 0.22, 0.10, 0.13, 0.12, 0.08)
_EMAIL_WORDS: tuple[str, ...] = (
    "lucky",
    "sunny",
    "happy",
    "star",
    "angel",
    "tiger",
    "dragon",
    "shop",
    "trade",
    "best",
    "good",
    "cool",
    "king",
    "smile",
    "ocean",
    "apple",
    "candy",
    "jack",
    "tony",
    "lily",
)

# Banks: (Han, English, abbreviation, card BINs as (prefix, length)).
_BANKS: tuple[tuple[str, str, str, tuple[tuple[str, int], ...]], ...] = (
    (
        "中国工商银行",
        "Industrial and Commercial Bank of China",
        "ICBC",
        (("622202", 19), ("621226", 19), ("427020", 16), ("552599", 16)),
    ),
    (
        "中国建设银行",
        "China Construction Bank",
        "CCB",
        (("621700", 19), ("622700", 19), ("436742", 16)),
    ),
    ("中国农业银行", "Agricultural Bank of China", "ABC", (("622848", 19), ("622845", 19))),
    ("中国银行", "Bank of China", "BOC", (("621661", 19), ("456351", 16), ("524047", 16))),
    ("招商银行", "China Merchants Bank", "CMB", (("622588", 16), ("621483", 16))),
    ("交通银行", "Bank of Communications", "BOCOM", (("622260", 19), ("622262", 19))),
    ("平安银行", "Ping An Bank", "PAB", (("622155", 16), ("622156", 16))),
    ("中信银行", "China CITIC Bank", "CITIC", (("622690", 16),)),
    ("浦发银行", "Shanghai Pudong Development Bank", "SPDB", (("622521", 16),)),
    ("兴业银行", "Industrial Bank", "CIB", (("622909", 18),)),
)
_BANK_P: tuple[float, ...] = (0.2, 0.18, 0.14, 0.12, 0.12, 0.07, 0.06, 0.04, 0.04, 0.03)

# Payment-service providers whose collection accounts appear on many unrelated sellers.
_PSPS: tuple[tuple[str, str], ...] = (
    ("连连银通电子支付有限公司", "LianLian Pay"),
    ("杭州呯嘭智能技术有限公司", "PingPong"),
    ("派安盈", "Payoneer"),
    ("空中云汇", "Airwallex"),
    ("万里汇", "WorldFirst"),
)

_COMPANY_WORDS: tuple[tuple[str, str], ...] = (
    ("华强", "Huaqiang"),
    ("恒达", "Hengda"),
    ("鑫源", "Xinyuan"),
    ("博远", "Boyuan"),
    ("金泰", "Jintai"),
    ("宏发", "Hongfa"),
    ("瑞丰", "Ruifeng"),
    ("天诚", "Tiancheng"),
    ("顺达", "Shunda"),
    ("佳美", "Jiamei"),
    ("永盛", "Yongsheng"),
    ("新锐", "Xinrui"),
    ("汇通", "Huitong"),
    ("联创", "Lianchuang"),
    ("万家", "Wanjia"),
    ("嘉禾", "Jiahe"),
    ("凯越", "Kaiyue"),
    ("星辰", "Xingchen"),
    ("卓越", "Zhuoyue"),
    ("鼎盛", "Dingsheng"),
    ("百合", "Baihe"),
    ("优品", "Youpin"),
    ("东方", "Dongfang"),
    ("宏图", "Hongtu"),
)
_INDUSTRIES: tuple[tuple[str, str], ...] = (
    ("贸易", "Trading"),
    ("电子科技", "Electronic Technology"),
    ("服饰", "Apparel"),
    ("化妆品", "Cosmetics"),
    ("进出口", "Import and Export"),
    ("电子商务", "E-commerce"),
    ("皮具", "Leather Goods"),
    ("鞋业", "Footwear"),
    ("玩具", "Toys"),
    ("家居用品", "Household Products"),
)

_SHOP_WORDS: tuple[tuple[str, str], ...] = (
    ("小美", "Xiaomei"),
    ("优品", "Youpin"),
    ("潮流", "Trendy"),
    ("时尚", "Fashion"),
    ("精品", "Boutique"),
    ("家居", "Home"),
    ("数码", "Digital"),
    ("母婴", "Baby"),
    ("美妆", "Beauty"),
    ("运动", "Sports"),
    ("户外", "Outdoor"),
    ("宠物", "Pet"),
    ("文具", "Stationery"),
    ("茶叶", "Tea"),
    ("零食", "Snacks"),
    ("手工", "Handmade"),
    ("古风", "Vintage"),
    ("森系", "Forest"),
    ("韩版", "Korean Style"),
    ("日系", "Japan Style"),
)
_SHOP_SUFFIX_HAN: tuple[str, ...] = (
    "旗舰店",
    "专营店",
    "专卖店",
    "小店",
    "工厂店",
    "精品店",
    "的店",
    "杂货铺",
)
_SHOP_SUFFIX_LATIN: tuple[str, ...] = (
    "Store",
    "Official Store",
    "Shop",
    "Outlet",
    "Mall",
    "Boutique",
)
_LUXURY: tuple[tuple[str, str], ...] = (
    ("耐克", "Nike"),
    ("阿迪达斯", "Adidas"),
    ("古驰", "Gucci"),
    ("路易威登", "LV"),
    ("香奈儿", "Chanel"),
    ("劳力士", "Rolex"),
    ("苹果", "Apple"),
    ("迪奥", "Dior"),
    ("巴黎世家", "Balenciaga"),
    ("爱马仕", "Hermes"),
)
_RING_SHOP_SUFFIX_HAN: tuple[str, ...] = ("工厂店", "正品折扣", "特卖", "原单", "代购", "尾货")
_RING_SHOP_SUFFIX_LATIN: tuple[str, ...] = (
    "Outlet",
    "Factory Store",
    "Discount",
    "Original",
    "Wholesale",
)

PLATFORMS: tuple[str, ...] = ("taobao", "tmall", "aliexpress", "1688")
_PLATFORM_P_HONEST: tuple[float, ...] = (0.45, 0.15, 0.25, 0.15)
_PLATFORM_P_RING: tuple[float, ...] = (0.45, 0.05, 0.40, 0.10)

# Codes used inside the generator are positions in the contract's enumerations (columns.py).
_ID_RIC, _ID_USCC, _ID_PASSPORT, _ID_OTHER = (
    cols.ID_TYPES.index(t) for t in ("CN_RIC", "CN_USCC", "PASSPORT", "OTHER")
)
_KIND_CARD, _KIND_BANK, _KIND_ALIPAY, _KIND_WALLET, _KIND_OTHER = (
    cols.INSTRUMENT_TYPES.index(t) for t in ("card", "bank_account", "alipay", "wallet", "other")
)
_ROLE_SHIP_FROM, _ROLE_RETURN, _ROLE_WAREHOUSE, _ROLE_PICKUP = (
    cols.LOGISTICS_ROLES.index(r) for r in ("ship_from", "return", "warehouse", "pickup")
)
_SIGNAL_P_RING = {
    "rights_holder_complaint": 0.35,
    "customer_complaint": 0.10,
    "test_buy_counterfeit": 0.20,
    "listing_takedown": 0.30,
    "other": 0.05,
}
_SIGNAL_P_HONEST = {
    "rights_holder_complaint": 0.04,
    "customer_complaint": 0.76,
    "test_buy_counterfeit": 0.0,
    "listing_takedown": 0.10,
    "other": 0.10,
}
_ADDR_HOME, _ADDR_BUSINESS, _ADDR_CONSOLIDATOR, _ADDR_PICKUP = 0, 1, 2, 3
_IP_FIXED, _IP_NAT = 0, 1
_COUNTRY_CODES: tuple[str, ...] = ("CN", "HK", "US")

# Time span of the data (UTC seconds).
_T_HONEST_START = int(pd.Timestamp("2012-01-01", tz="UTC").timestamp())
_T_RING_START = int(pd.Timestamp("2018-01-01", tz="UTC").timestamp())
_T_LAST_OPEN = int(pd.Timestamp("2025-06-30", tz="UTC").timestamp())
_T_END = int(pd.Timestamp("2025-09-30", tz="UTC").timestamp())
_DAY = 86_400

# Shapes of the population.
_RING_MIN, _RING_MAX, _RING_EXPONENT = 5, 150, 2.0
_MULTI_SHARE = 0.12  # share of honest accounts owned by multi-account operators
_MULTI_SIZES, _MULTI_P = (2, 3, 4, 5), (0.5, 0.25, 0.15, 0.10)
_HOUSEHOLD_SHARE = 0.04  # share of honest single sellers living in a household with another
_COMPANY_SHARE = 0.15
_FOREIGN_P = (0.965, 0.025, 0.01)  # CN, HK, US for honest entities

# Base probabilities of hub use; multiplied by --hub-scale.
_P_CONSOLIDATOR = 0.05
_P_PICKUP = 0.08
_P_NAT_IP = 0.12
_P_COLLECTION = 0.015
_P_COMMON_NAME = 0.03
_P_DESK_PHONE = 0.3  # a consolidator warehouse row carries the consolidator's desk phone

# Base probabilities of a non-canonical rendering; multiplied by --noise.
_NOISE_PHONE = 0.55
_NOISE_CARD = 0.4
_NOISE_BANK_ACCOUNT = 0.3
_NOISE_ID = 0.25
_NOISE_EMAIL = 0.2
_NOISE_NAME = 0.45
_NOISE_ADDRESS = 0.5
_NOISE_DEVICE = 0.08
_NOISE_IP = 0.03
_NOISE_TEXT = 0.1
_NULL_RATE = 0.02  # base rate of nulls in optional columns; multiplied by --noise

_MALFORMED_TIMESTAMPS: tuple[str, ...] = (
    "2024-13-45 99:00",
    "31/02/2023 25:61",
    "not a date",
    "2023-02-30T24:61:00Z",
    "0000-00-00",
)

_FULLWIDTH = str.maketrans({**{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}, " ": "\u3000"})
_FULLWIDTH_DIGITS = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x30, 0x3A)})


# --------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratorParams:
    """Knobs of the generator; see `generate` for their meaning."""

    accounts: int
    seed: int = 7
    malformed_rate: float = 0.002
    ring_share: float = 0.25
    hub_scale: float = 1.0
    noise: float = 1.0
    supplier_share: float = 0.0

    def validate(self) -> None:
        """Raise `ConfigError` listing every knob out of range."""
        problems = []
        if self.accounts < 1:
            problems.append(f"accounts must be >= 1, got {self.accounts}")
        if not 0.0 <= self.malformed_rate <= 0.5:
            problems.append(f"malformed_rate must be in [0, 0.5], got {self.malformed_rate}")
        if not 0.0 <= self.ring_share <= 0.9:
            problems.append(f"ring_share must be in [0, 0.9], got {self.ring_share}")
        if not 0.0 <= self.hub_scale <= 10.0:
            problems.append(f"hub_scale must be in [0, 10], got {self.hub_scale}")
        if not 0.0 <= self.noise <= 2.0:
            problems.append(f"noise must be in [0, 2], got {self.noise}")
        if not 0.0 <= self.supplier_share <= 1.0:
            problems.append(f"supplier_share must be in [0, 1], got {self.supplier_share}")
        if problems:
            raise ConfigError("invalid generator arguments: " + "; ".join(problems))


def _empty_malformed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": pd.Series(dtype=object),
            "row": pd.Series(dtype="int64"),
            "kind": pd.Series(dtype=object),
            "column": pd.Series(dtype=object),
            cols.ACCOUNT_ID: pd.Series(dtype=object),
            "csv_only": pd.Series(dtype=bool),
        }
    )


@dataclass(frozen=True)
class SyntheticData:
    """The four contract datasets, the truth, and the list of deliberately malformed rows.

    `malformed` has one row per malformed input row: `dataset`, `row` (0-based position in
    that dataset), `kind`, `column`, `account_id` (as written) and `csv_only` (true for
    timestamps that are made unparseable only in CSV output). `entities` has one row per true
    entity: `entity_id`, `kind` (`single`, `operator`, `ring`), `household_id` (null unless the
    entity shares a home with other entities) and `account_count`. `links` has one row per
    pair of different true entities (rings) that share an upstream supplier's value:
    `entity_id_l` < `entity_id_r`, `link_type` (`shared_warehouse_address` or
    `shared_contact_phone`, as `entity_links` names it) and `supplier_id`.
    """

    accounts: pd.DataFrame
    payment_instruments: pd.DataFrame
    logistics: pd.DataFrame
    enforcement_signals: pd.DataFrame
    truth: pd.DataFrame
    malformed: pd.DataFrame = field(default_factory=_empty_malformed)
    entities: pd.DataFrame = field(default_factory=pd.DataFrame)
    links: pd.DataFrame = field(default_factory=pd.DataFrame)


# Parquet schemas: the contract's column names and types, in contract order.
_TS = pa.timestamp("us", tz="UTC")
SCHEMAS: dict[str, pa.Schema] = {
    cols.ACCOUNTS: pa.schema(
        [
            (cols.ACCOUNT_ID, pa.string()),
            (cols.PLATFORM, pa.string()),
            (cols.REGISTERED_AT, _TS),
            (cols.SHOP_NAME, pa.string()),
            (cols.LEGAL_NAME, pa.string()),
            (cols.ID_TYPE, pa.string()),
            (cols.ID_NUMBER, pa.string()),
            (cols.PHONE, pa.string()),
            (cols.EMAIL, pa.string()),
            (cols.REGISTRATION_IP, pa.string()),
            (cols.DEVICE_ID, pa.string()),
            (cols.COUNTRY, pa.string()),
            (cols.PROVINCE, pa.string()),
            (cols.CITY, pa.string()),
            (cols.ADDRESS, pa.string()),
        ]
    ),
    cols.PAYMENT_INSTRUMENTS: pa.schema(
        [
            (cols.ACCOUNT_ID, pa.string()),
            (cols.INSTRUMENT_TYPE, pa.string()),
            (cols.INSTRUMENT_ID, pa.string()),
            (cols.HOLDER_NAME, pa.string()),
            (cols.BANK_NAME, pa.string()),
            (cols.ADDED_AT, _TS),
        ]
    ),
    cols.LOGISTICS: pa.schema(
        [
            (cols.ACCOUNT_ID, pa.string()),
            (cols.ROLE, pa.string()),
            (cols.CONTACT_NAME, pa.string()),
            (cols.CONTACT_PHONE, pa.string()),
            (cols.ADDRESS, pa.string()),
            (cols.CITY, pa.string()),
            (cols.PROVINCE, pa.string()),
            (cols.POSTCODE, pa.string()),
            (cols.COUNTRY, pa.string()),
            (cols.SHIPMENT_COUNT, pa.int64()),
            (cols.FIRST_USED_AT, _TS),
            (cols.LAST_USED_AT, _TS),
        ]
    ),
    cols.ENFORCEMENT_SIGNALS: pa.schema(
        [
            (cols.ACCOUNT_ID, pa.string()),
            (cols.SIGNAL_TYPE, pa.string()),
            (cols.SIGNAL_COUNT, pa.int64()),
            (cols.OBSERVED_AT, _TS),
        ]
    ),
}
TRUTH_SCHEMA = pa.schema([(cols.ACCOUNT_ID, pa.string()), (cols.ENTITY_ID, pa.string())])


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _stage_rng(seed: int, stage: int) -> np.random.Generator:
    """An independent PCG64 stream per stage, so that a change in one stage leaves the others."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stage])))


def _normalised(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _zipf_choice(rng: np.random.Generator, n_values: int, size: int) -> np.ndarray:
    """Pick `size` values among `n_values` with weight 1/rank (a few very popular values)."""
    return rng.choice(n_values, size=size, p=_normalised(1.0 / np.arange(1, n_values + 1)))


def _variants(
    rng: np.random.Generator, n: int, p_noisy: float, weights: Sequence[float]
) -> np.ndarray:
    """Rendering variant per row: 0 (canonical) or, with probability `p_noisy`, 1..len(weights)."""
    out = np.zeros(n, dtype=np.int64)
    noisy = rng.random(n) < min(1.0, p_noisy)
    k = int(noisy.sum())
    if k:
        out[noisy] = rng.choice(np.arange(1, len(weights) + 1), size=k, p=_normalised(weights))
    return out


def _apply(
    funcs: Sequence[Callable[[str], str]], values: Sequence[str], variants: np.ndarray
) -> list[str]:
    return [funcs[v](s) for s, v in zip(values, variants.tolist(), strict=True)]


def _draw_sizes(
    rng: np.random.Generator, target: int, support: np.ndarray, p: np.ndarray, minimum: int
) -> np.ndarray:
    """Group sizes drawn from `support` adding up to about `target` (a remainder < minimum is
    dropped)."""
    if target < minimum:
        return np.zeros(0, dtype=np.int64)
    sizes = rng.choice(support, size=target // minimum + 1, p=p).astype(np.int64)
    ends = np.cumsum(sizes)
    n = int(np.searchsorted(ends, target)) + 1
    sizes = sizes[:n].copy()
    sizes[-1] -= int(ends[n - 1]) - target
    if sizes[-1] < minimum:
        sizes = sizes[:-1]
    return sizes


class _Registry:
    """Allocates integer ids of one asset kind and keeps integer attributes per id."""

    def __init__(self, *attributes: str) -> None:
        self.size = 0
        self._chunks: dict[str, list[np.ndarray]] = {a: [] for a in attributes}
        self._pending: dict[str, list[int]] = {a: [] for a in attributes}

    def add(self, n: int, **attributes: Any) -> np.ndarray:
        """Allocate `n` ids at once; each attribute is a scalar or an array of length `n`."""
        self._flush()
        for name, chunks in self._chunks.items():
            value = np.asarray(attributes[name], dtype=np.int64)
            chunks.append(np.broadcast_to(value, (n,)).copy())
        ids = np.arange(self.size, self.size + n, dtype=np.int64)
        self.size += n
        return ids

    def add_one(self, **attributes: int) -> int:
        """Allocate one id (cheap inside Python loops)."""
        for name, pending in self._pending.items():
            pending.append(attributes[name])
        self.size += 1
        return self.size - 1

    def attribute(self, name: str) -> np.ndarray:
        """All values of one attribute, indexed by id."""
        self._flush()
        chunks = self._chunks[name]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)

    def _flush(self) -> None:
        if any(self._pending.values()):
            for name, pending in self._pending.items():
                self._chunks[name].append(np.asarray(pending, dtype=np.int64))
                pending.clear()


# --------------------------------------------------------------------------------------------
# Structure: entities, accounts and the integer ids of the values they use
# --------------------------------------------------------------------------------------------


@dataclass
class _World:
    """Integer-level description of the population (before any text is rendered)."""

    n_accounts: int
    entity: np.ndarray  # per account
    is_ring: np.ndarray
    person: np.ndarray  # legal person (honest owner or ring nominee)
    company: np.ndarray  # -1 when the account is registered to a person
    phone: np.ndarray
    email: np.ndarray
    ip: np.ndarray
    device: np.ndarray
    address: np.ndarray
    platform: np.ndarray
    registered_at: np.ndarray  # UTC seconds
    n_entities: int
    entity_kind: np.ndarray  # 0 single, 1 multi-account operator, 2 ring, per entity
    household: np.ndarray  # household id per entity, -1 if none
    pay_account: np.ndarray
    pay_instrument: np.ndarray
    log_account: np.ndarray
    log_role: np.ndarray
    log_address: np.ndarray
    log_person: np.ndarray
    log_phone: np.ndarray
    persons: _Persons
    companies: _Registry
    phones: _Registry
    emails: _Registry
    devices: _Registry
    ips: _Registry
    addresses: _Registry
    instruments: _Registry
    hubs: dict[str, np.ndarray]
    # Related rings: (entity_l, entity_r, kind, supplier) per pair sharing a supplier value.
    supplier_links: np.ndarray


@dataclass
class _Persons:
    """People: names and identity documents, by person id."""

    surname: np.ndarray
    given_han: list[str]
    given_latin: list[str]
    country: np.ndarray
    birth: np.ndarray  # datetime64[D]
    id_type: np.ndarray


def _make_persons(rng: np.random.Generator, country: np.ndarray, p_common: float) -> _Persons:
    """Draw names, birth dates and document types for len(country) people."""
    n = len(country)
    surname = rng.choice(len(_SURNAMES), size=n, p=_normalised([s[2] for s in _SURNAMES]))
    first = rng.integers(0, len(_GIVEN_CHARS), size=n)
    second = np.where(rng.random(n) < 0.72, rng.integers(0, len(_GIVEN_CHARS), size=n), -1)
    han = [c[0] for c in _GIVEN_CHARS]
    latin = [c[1] for c in _GIVEN_CHARS]
    given_han = [
        han[a] + han[b] if b >= 0 else han[a]
        for a, b in zip(first.tolist(), second.tolist(), strict=True)
    ]
    given_latin = [
        (latin[a] + latin[b] if b >= 0 else latin[a]).capitalize()
        for a, b in zip(first.tolist(), second.tolist(), strict=True)
    ]
    common = np.flatnonzero(rng.random(n) < p_common)
    which = _zipf_choice(rng, len(COMMON_NAMES), len(common))
    surname_index = {s[0]: i for i, s in enumerate(_SURNAMES)}
    for person, k in zip(common.tolist(), which.tolist(), strict=True):
        sur, g_han, g_latin = COMMON_NAMES[k]
        surname[person] = surname_index[sur]
        given_han[person] = g_han
        given_latin[person] = g_latin
    year = rng.integers(1965, 2005, size=n)
    birth = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + rng.integers(
        0, 365, size=n
    ).astype("timedelta64[D]")
    id_type = np.where(
        country == 0,
        rng.choice([_ID_RIC, _ID_PASSPORT, _ID_OTHER], size=n, p=[0.985, 0.01, 0.005]),
        rng.choice([_ID_PASSPORT, _ID_OTHER], size=n, p=[0.9, 0.1]),
    )
    return _Persons(surname, given_han, given_latin, country, birth, id_type)


@dataclass
class _Ring:
    """Per-ring-account output of the chain builder (indexed by ring account, 0-based)."""

    device: np.ndarray
    ip: np.ndarray
    return_address: np.ndarray
    warehouse_address: np.ndarray  # the ring's own warehouse, -1 if none
    hub_warehouse: np.ndarray  # a consolidator warehouse, -1 if none
    label_phone: np.ndarray
    registered_at: np.ndarray
    pay_account: np.ndarray  # ring account index of each instrument use
    pay_instrument: np.ndarray


_STRONG_KINDS = ("instrument", "device", "return", "warehouse", "label")
_WEAK_WAREHOUSE = ("instrument", "device", "return", "label")  # parent without a warehouse


def _build_rings(
    rnd: random.Random,
    ring_sizes: np.ndarray,
    ring_city: np.ndarray,
    nominee: np.ndarray,
    registries: dict[str, _Registry],
    hubs: dict[str, np.ndarray],
    hub_scale: float,
) -> _Ring:
    """Open each ring's accounts in bursts, chaining them through reused strong assets.

    Every account after a ring's first copies 1-3 strong values (instrument, device, return or
    warehouse address, label phone) from a parent account opened earlier in the same ring: the
    previous account of its burst, or, for the first account of a new burst, any earlier
    account (then usually through a single value, so sub-groups hang together by one thread).
    The ring is therefore connected through strong values by induction. Other slots get fresh
    values, so most pairs of a large ring share nothing directly.
    """
    n = int(ring_sizes.sum())
    device = np.full(n, -1, dtype=np.int64)
    ip = np.full(n, -1, dtype=np.int64)
    ret = np.full(n, -1, dtype=np.int64)
    wh = np.full(n, -1, dtype=np.int64)
    hub_wh = np.full(n, -1, dtype=np.int64)
    label = np.full(n, -1, dtype=np.int64)
    opened = np.zeros(n, dtype=np.int64)
    pay_account: list[int] = []
    pay_instrument: list[int] = []
    devices, ips = registries["devices"], registries["ips"]
    addresses, phones = registries["addresses"], registries["phones"]
    instruments = registries["instruments"]
    nat = hubs["nat_ip"].tolist()
    consolidators = hubs["consolidator"].tolist()
    p_nat = min(1.0, _P_NAT_IP * hub_scale)
    p_hub_wh = min(1.0, 0.5 * _P_CONSOLIDATOR * hub_scale)
    random_ = rnd.random
    randrange = rnd.randrange
    bank_cum = np.cumsum(_normalised(_BANK_P)).tolist()
    last_bank = len(_BANKS) - 1

    def fresh_instrument(holder: int) -> int:
        u = random_()
        kind = _KIND_CARD if u < 0.5 else _KIND_BANK if u < 0.7 else _KIND_ALIPAY
        bank = min(last_bank, bisect.bisect(bank_cum, random_()))
        return instruments.add_one(kind=kind, person=holder, company=-1, bank=bank, psp=-1)

    start = 0
    for ring_no, size in enumerate(ring_sizes.tolist()):
        city = int(ring_city[ring_no])
        t = _T_RING_START + randrange(_T_LAST_OPEN - _T_RING_START - 200 * _DAY)
        instruments_of: list[list[int]] = []
        burst_ip = -1
        burst_device = -1
        previous_burst_ip = -1
        for j in range(size):
            a = start + j
            new_burst = j == 0 or random_() < 0.22
            if new_burst:
                t += int(rnd.expovariate(1.0 / (25 * _DAY)))
                previous_burst_ip = burst_ip
                u = random_()
                if u < p_nat:
                    burst_ip = nat[randrange(len(nat))] if nat else ips.add_one(kind=_IP_FIXED)
                elif previous_burst_ip >= 0 and u < p_nat + 0.3:
                    burst_ip = previous_burst_ip
                else:
                    burst_ip = ips.add_one(kind=_IP_FIXED)
                burst_device = devices.add_one(kind=randrange(3)) if random_() < 0.5 else -1
                parent = randrange(j) if j else -1
                u = random_()
                n_links = 1 if u < 0.7 else 2 if u < 0.95 else 3
            else:
                t += int(rnd.expovariate(1.0 / 2400.0)) + 60
                parent = j - 1 if random_() < 0.7 else randrange(max(0, j - 5), j)
                u = random_()
                n_links = 1 if u < 0.5 else 2 if u < 0.85 else 3
            opened[a] = min(t, _T_END - _DAY)
            mine: list[int] = []
            if parent >= 0:
                p = start + parent
                available = list(_STRONG_KINDS) if wh[p] >= 0 else list(_WEAK_WAREHOUSE)
                for kind_name in rnd.sample(available, min(n_links, len(available))):
                    if kind_name == "instrument":
                        options = instruments_of[parent]
                        mine.append(options[randrange(len(options))])
                    elif kind_name == "device":
                        device[a] = device[p]
                    elif kind_name == "return":
                        ret[a] = ret[p]
                    elif kind_name == "warehouse":
                        wh[a] = wh[p]
                    else:
                        label[a] = label[p]
            if j > 1 and random_() < 0.2:
                # A second, preferential reuse: a popular asset of any earlier account.
                other = randrange(j)
                o = start + other
                u = random_()
                if u < 0.4 and len(mine) < 3:
                    pick = instruments_of[other][randrange(len(instruments_of[other]))]
                    if pick not in mine:
                        mine.append(pick)
                elif u < 0.6 and device[a] < 0:
                    device[a] = device[o]
                elif u < 0.8 and ret[a] < 0:
                    ret[a] = ret[o]
                elif label[a] < 0:
                    label[a] = label[o]
            if device[a] < 0:
                if burst_device >= 0 and random_() < 0.6:
                    device[a] = burst_device
                else:
                    device[a] = devices.add_one(kind=randrange(3))
            wanted = 1 + (random_() < 0.4) + (random_() < 0.15)
            while len(mine) < wanted:
                mine.append(fresh_instrument(int(nominee[a])))
            if ret[a] < 0:
                ret[a] = addresses.add_one(city=city, kind=_ADDR_BUSINESS)
            if wh[a] < 0:
                if random_() < 0.35:
                    wh[a] = addresses.add_one(city=city, kind=_ADDR_BUSINESS)
                elif consolidators and random_() < p_hub_wh:
                    hub_wh[a] = consolidators[randrange(len(consolidators))]
            if label[a] < 0:
                label[a] = phones.add_one()
            ip[a] = burst_ip
            instruments_of.append(mine)
            pay_account.extend([a] * len(mine))
            pay_instrument.extend(mine)
        start += size
    return _Ring(
        device,
        ip,
        ret,
        wh,
        hub_wh,
        label,
        opened,
        np.asarray(pay_account, dtype=np.int64),
        np.asarray(pay_instrument, dtype=np.int64),
    )


# Upstream suppliers: what a supplier value is, as the entity network reports its link type.
_SUPPLIER_WAREHOUSE = 0  # a supplier's warehouse, a `warehouse` row of its customers' accounts
_SUPPLIER_PHONE = 1  # a shipping agent's phone, on its customers' `ship_from` labels
_SUPPLIER_LINK_TYPES = ("shared_warehouse_address", "shared_contact_phone")
_SUPPLIER_P_WAREHOUSE = 0.6
_SUPPLIER_GROUP = ((2, 3, 4), (0.5, 0.3, 0.2))  # rings per supplier
_SUPPLIER_USERS = ((1, 2, 3), (0.5, 0.3, 0.2))  # accounts per customer ring


@dataclass
class _Suppliers:
    """Which ring accounts use which supplier value, and the related ring pairs."""

    rng: np.random.Generator  # the stage's stream, for drawing the suppliers' own values
    count: tuple[int, int]  # suppliers per kind
    of_account: tuple[np.ndarray, np.ndarray]  # per ring account and kind: supplier or -1
    links: np.ndarray  # (ring_l, ring_r, kind, supplier) per related ring pair, ring_l < ring_r


def _plan_suppliers(
    rng: np.random.Generator,
    ring_start: np.ndarray,
    ring_sizes: np.ndarray,
    eligible: dict[int, np.ndarray],
    share: float,
) -> _Suppliers:
    """Group `share` of the rings, 2-4 at a time, as the customers of one supplier each.

    A supplier is a warehouse (60%) or a shipping agent's label contact phone; 1-3 eligible
    accounts (per kind, a mask over ring accounts) of each customer ring use its value. A ring
    without an eligible account of the supplier's kind is left out of the group; a group left
    with one ring relates no one and is dropped.
    """
    n_ring = int(ring_sizes.sum())
    of_account = (np.full(n_ring, -1, dtype=np.int64), np.full(n_ring, -1, dtype=np.int64))
    count = [0, 0]
    links: list[tuple[int, int, int, int]] = []
    customers = rng.permutation(len(ring_sizes))[: int(round(len(ring_sizes) * share))]
    groups = _draw_sizes(
        rng, len(customers), np.asarray(_SUPPLIER_GROUP[0]), _normalised(_SUPPLIER_GROUP[1]), 2
    )
    offset = 0
    for g in groups.tolist():
        members = sorted(customers[offset : offset + g].tolist())
        offset += g
        kind = _SUPPLIER_WAREHOUSE if rng.random() < _SUPPLIER_P_WAREHOUSE else _SUPPLIER_PHONE
        users = rng.choice(_SUPPLIER_USERS[0], size=g, p=_normalised(_SUPPLIER_USERS[1]))
        served: list[tuple[int, np.ndarray]] = []
        for r, n_users in zip(members, users.tolist(), strict=True):
            start = int(ring_start[r])
            accounts = start + np.flatnonzero(eligible[kind][start : start + int(ring_sizes[r])])
            if len(accounts):
                picked = rng.choice(accounts, size=min(n_users, len(accounts)), replace=False)
                served.append((r, np.sort(picked)))
        if len(served) < 2:
            continue
        supplier = count[kind]
        count[kind] += 1
        for _, picked in served:
            of_account[kind][picked] = supplier
        links.extend(
            (left, right, kind, supplier)
            for (left, _), (right, _) in itertools.combinations(served, 2)
        )
    return _Suppliers(
        rng, (count[0], count[1]), of_account, np.asarray(links, dtype=np.int64).reshape(-1, 4)
    )


def _build_world(params: GeneratorParams) -> _World:
    """Decide who owns which accounts and which values each account uses (integers only)."""
    rng = _stage_rng(params.seed, 1)
    rnd = random.Random(params.seed)
    n_accounts = params.accounts
    hub = params.hub_scale

    support = np.arange(_RING_MIN, _RING_MAX + 1)
    ring_sizes = _draw_sizes(
        rng,
        int(round(n_accounts * params.ring_share)),
        support,
        _normalised(support.astype(float) ** -_RING_EXPONENT),
        _RING_MIN,
    )
    n_ring = int(ring_sizes.sum())
    n_honest = n_accounts - n_ring
    multi_sizes = _draw_sizes(
        rng,
        int(round(n_honest * _MULTI_SHARE)),
        np.asarray(_MULTI_SIZES),
        _normalised(_MULTI_P),
        2,
    )
    n_single = n_honest - int(multi_sizes.sum())
    honest_sizes = np.concatenate([np.ones(n_single, dtype=np.int64), multi_sizes])
    n_honest_entities = len(honest_sizes)
    n_rings = len(ring_sizes)
    n_entities = n_honest_entities + n_rings
    entity_kind = np.concatenate(
        [
            np.zeros(n_single, np.int64),
            np.ones(len(multi_sizes), np.int64),
            np.full(n_rings, 2, np.int64),
        ]
    )
    logger.info(
        "population: %d accounts, %d honest entities (%d multi-account), %d rings holding %d "
        "accounts",
        n_accounts,
        n_honest_entities,
        len(multi_sizes),
        n_rings,
        n_ring,
    )

    city_weights = _normalised([c.weight if c.country == "CN" else 0.0 for c in CITIES])
    foreign_by_country = {
        k: np.asarray([i for i, c in enumerate(CITIES) if c.country == code])
        for k, code in enumerate(_COUNTRY_CODES)
    }

    registries = {
        "companies": _Registry("city"),
        "phones": _Registry(),
        "emails": _Registry("person"),
        "devices": _Registry("kind"),
        "ips": _Registry("kind"),
        "addresses": _Registry("city", "kind"),
        "instruments": _Registry("kind", "person", "company", "bank", "psp"),
    }
    companies, phones, emails = (
        registries["companies"],
        registries["phones"],
        registries["emails"],
    )
    devices, ips, addresses = registries["devices"], registries["ips"], registries["addresses"]
    instruments = registries["instruments"]

    # Hub values, shared by unrelated entities.
    cn_hub_cities = np.asarray(
        [
            i
            for i, c in enumerate(CITIES)
            if c.city_latin in ("Yiwu", "Shenzhen", "Guangzhou", "Dongguan")
        ]
    )
    n_consolidators = max(3, n_accounts // 20_000)
    n_pickups = max(5, n_accounts // 4_000)
    n_collection = max(1, n_accounts // 200_000)
    hubs = {
        "consolidator": addresses.add(
            n_consolidators,
            city=rng.choice(cn_hub_cities, n_consolidators),
            kind=_ADDR_CONSOLIDATOR,
        ),
        "desk_phone": phones.add(n_consolidators),
        "pickup": addresses.add(
            n_pickups,
            city=rng.choice(len(CITIES), n_pickups, p=city_weights),
            kind=_ADDR_PICKUP,
        ),
        "nat_ip": ips.add(max(3, n_accounts // 40_000), kind=_IP_NAT),
        "collection": instruments.add(
            n_collection,
            kind=_KIND_OTHER,
            person=-1,
            company=-1,
            bank=-1,
            psp=rng.integers(0, len(_PSPS), n_collection),
        ),
    }

    # Honest entities.
    e_country = rng.choice(3, size=n_honest_entities, p=_FOREIGN_P)
    e_city = rng.choice(len(CITIES), size=n_honest_entities, p=city_weights)
    for k in (1, 2):
        where = np.flatnonzero(e_country == k)
        e_city[where] = rng.choice(foreign_by_country[k], size=len(where))
    e_company = np.full(n_honest_entities, -1, dtype=np.int64)
    is_company = rng.random(n_honest_entities) < np.where(e_country == 0, _COMPANY_SHARE, 0.1)
    e_company[is_company] = companies.add(int(is_company.sum()), city=e_city[is_company])

    # People: honest owners, then ring nominees, then two label names per ring.
    ring_city = rng.choice(len(CITIES), size=n_rings, p=city_weights)
    person_country = np.concatenate([e_country, np.zeros(n_ring + 2 * n_rings, dtype=np.int64)])
    persons = _make_persons(
        _stage_rng(params.seed, 2), person_country, min(1.0, _P_COMMON_NAME * hub)
    )
    e_person = np.arange(n_honest_entities)
    nominee = n_honest_entities + np.arange(n_ring)
    label_person = n_honest_entities + n_ring + np.arange(2 * n_rings).reshape(n_rings, 2)

    e_address = addresses.add(
        n_honest_entities, city=e_city, kind=np.where(is_company, _ADDR_BUSINESS, _ADDR_HOME)
    )
    e_ship_address = e_address.copy()
    separate = rng.random(n_honest_entities) < 0.3
    e_ship_address[separate] = addresses.add(
        int(separate.sum()), city=e_city[separate], kind=_ADDR_BUSINESS
    )
    e_ip = ips.add(n_honest_entities, kind=_IP_FIXED)
    nat_mask = rng.random(n_honest_entities) < min(1.0, _P_NAT_IP * hub)
    e_ip[nat_mask] = rng.choice(hubs["nat_ip"], size=int(nat_mask.sum()))
    e_phone = phones.add(n_honest_entities)
    e_email = emails.add(n_honest_entities, person=e_person)
    e_device = devices.add(n_honest_entities, kind=rng.integers(0, 3, n_honest_entities))
    e_bank = rng.choice(len(_BANKS), size=n_honest_entities, p=_normalised(_BANK_P))
    e_card = np.full(n_honest_entities, -1, dtype=np.int64)
    has = rng.random(n_honest_entities) < 0.8
    e_card[has] = instruments.add(
        int(has.sum()), kind=_KIND_CARD, person=e_person[has], company=-1, bank=e_bank[has], psp=-1
    )
    e_alipay = np.full(n_honest_entities, -1, dtype=np.int64)
    has = rng.random(n_honest_entities) < 0.6
    e_alipay[has] = instruments.add(
        int(has.sum()),
        kind=_KIND_ALIPAY,
        person=e_person[has],
        company=e_company[has],
        bank=-1,
        psp=-1,
    )
    e_bank_account = np.full(n_honest_entities, -1, dtype=np.int64)
    has = rng.random(n_honest_entities) < np.where(is_company, 0.8, 0.15)
    e_bank_account[has] = instruments.add(
        int(has.sum()),
        kind=_KIND_BANK,
        person=e_person[has],
        company=e_company[has],
        bank=e_bank[has],
        psp=-1,
    )

    # Households: two or three single sellers (different entities) at one home.
    household = np.full(n_entities, -1, dtype=np.int64)
    candidates = np.flatnonzero((honest_sizes == 1) & (e_country == 0) & ~is_company)
    candidates = candidates[rng.permutation(len(candidates))]
    group_sizes = _draw_sizes(
        rng,
        int(len(candidates) * _HOUSEHOLD_SHARE),
        np.asarray([2, 3]),
        np.asarray([0.7, 0.3]),
        2,
    )
    offset = 0
    for h, g in enumerate(group_sizes.tolist()):
        members = candidates[offset : offset + g]
        head = members[0]
        household[members] = h
        e_address[members] = e_address[head]
        e_ship_address[members] = e_address[head]
        e_city[members] = e_city[head]
        e_ip[members] = e_ip[head]
        persons.surname[members] = persons.surname[head]
        for m in members[1:].tolist():
            if rnd.random() < 0.3:
                e_device[m] = e_device[head]
        offset += g

    # Honest accounts: one row per account, grouped by entity, rank 0 is the first account.
    h_entity = np.repeat(np.arange(n_honest_entities), honest_sizes)
    first_of = np.concatenate([[0], np.cumsum(honest_sizes)[:-1]])
    rank = np.arange(n_honest) - np.repeat(first_of, honest_sizes)
    first = rank == 0

    def shared(p_share: float) -> np.ndarray:
        return first | (rng.random(n_honest) < p_share)

    h_phone = e_phone[h_entity].copy()
    fresh = ~shared(0.7)
    h_phone[fresh] = phones.add(int(fresh.sum()))
    h_email = e_email[h_entity].copy()
    fresh = ~shared(0.5)
    h_email[fresh] = emails.add(int(fresh.sum()), person=e_person[h_entity[fresh]])
    h_device = e_device[h_entity].copy()
    fresh = ~shared(0.6)
    h_device[fresh] = devices.add(int(fresh.sum()), kind=rng.integers(0, 3, int(fresh.sum())))
    h_ip = e_ip[h_entity].copy()
    fresh = ~shared(0.6)
    h_ip[fresh] = ips.add(int(fresh.sum()), kind=_IP_FIXED)
    nat_mask = fresh & (rng.random(n_honest) < min(1.0, _P_NAT_IP * hub))
    h_ip[nat_mask] = rng.choice(hubs["nat_ip"], size=int(nat_mask.sum()))
    h_platform = rng.choice(len(PLATFORMS), size=n_honest, p=_normalised(_PLATFORM_P_HONEST))
    e_opened = rng.integers(_T_HONEST_START, _T_LAST_OPEN, size=n_honest_entities)
    gaps = rng.exponential(250 * _DAY, size=n_honest).astype(np.int64) * (~first)
    group_cum = np.cumsum(gaps)
    group_cum -= np.repeat(group_cum[first_of], honest_sizes)
    h_opened = np.minimum(e_opened[h_entity] + group_cum, _T_END - _DAY)

    # Honest payment instruments: up to five candidates, the first three present are kept.
    n_h = n_honest
    slots = np.full((n_h, 5), -1, dtype=np.int64)
    card = e_card[h_entity]
    use = (card >= 0) & shared(0.75)
    slots[use, 0] = card[use]
    own = ~use & (rng.random(n_h) < 0.4)
    slots[own, 0] = instruments.add(
        int(own.sum()),
        kind=_KIND_CARD,
        person=e_person[h_entity[own]],
        company=-1,
        bank=rng.choice(len(_BANKS), int(own.sum()), p=_normalised(_BANK_P)),
        psp=-1,
    )
    alipay = e_alipay[h_entity]
    use = (alipay >= 0) & shared(0.6)
    slots[use, 1] = alipay[use]
    bank_account = e_bank_account[h_entity]
    use = (bank_account >= 0) & shared(0.8)
    slots[use, 2] = bank_account[use]
    use = rng.random(n_h) < min(1.0, _P_COLLECTION * hub)
    slots[use, 3] = hubs["collection"][_zipf_choice(rng, len(hubs["collection"]), int(use.sum()))]
    use = rng.random(n_h) < 0.08
    slots[use, 4] = instruments.add(
        int(use.sum()),
        kind=_KIND_WALLET,
        person=e_person[h_entity[use]],
        company=-1,
        bank=-1,
        psp=-1,
    )
    use = (slots[:, 3] < 0) & (rng.random(n_h) < 0.005)
    slots[use, 3] = instruments.add(
        int(use.sum()),
        kind=_KIND_OTHER,
        person=e_person[h_entity[use]],
        company=-1,
        bank=-1,
        psp=rng.integers(0, len(_PSPS), int(use.sum())),
    )
    present = slots >= 0
    keep = present & (np.cumsum(present, axis=1) <= 3)
    h_pay_account, slot_no = np.nonzero(keep)
    h_pay_instrument = slots[h_pay_account, slot_no]

    # Honest logistics rows: ship_from, return, warehouse, pickup.
    log_rows: list[tuple[np.ndarray, ...]] = []
    owner = e_person[h_entity]
    acc_ids = np.arange(n_h)
    use = rng.random(n_h) < 0.7
    phone_on_label = np.where(rng.random(n_h) < 0.8, h_phone, e_phone[h_entity])
    log_rows.append(
        (
            acc_ids[use],
            np.full(int(use.sum()), _ROLE_SHIP_FROM),
            e_ship_address[h_entity[use]],
            owner[use],
            phone_on_label[use],
        )
    )
    use = rng.random(n_h) < 0.45
    log_rows.append(
        (
            acc_ids[use],
            np.full(int(use.sum()), _ROLE_RETURN),
            np.where(
                rng.random(int(use.sum())) < 0.7,
                e_ship_address[h_entity[use]],
                e_address[h_entity[use]],
            ),
            owner[use],
            phone_on_label[use],
        )
    )
    use = rng.random(n_h) < min(1.0, _P_CONSOLIDATOR * hub)
    k = int(use.sum())
    which = _zipf_choice(rng, n_consolidators, k)
    desk = rng.random(k) < _P_DESK_PHONE
    log_rows.append(
        (
            acc_ids[use],
            np.full(k, _ROLE_WAREHOUSE),
            hubs["consolidator"][which],
            owner[use],
            np.where(desk, hubs["desk_phone"][which], phone_on_label[use]),
        )
    )
    use = ~use & (rng.random(n_h) < 0.03)
    k = int(use.sum())
    log_rows.append(
        (
            acc_ids[use],
            np.full(k, _ROLE_WAREHOUSE),
            addresses.add(k, city=e_city[h_entity[use]], kind=_ADDR_BUSINESS),
            owner[use],
            phone_on_label[use],
        )
    )
    use = rng.random(n_h) < min(1.0, _P_PICKUP * hub)
    k = int(use.sum())
    log_rows.append(
        (
            acc_ids[use],
            np.full(k, _ROLE_PICKUP),
            rng.choice(hubs["pickup"], size=k),
            owner[use],
            phone_on_label[use],
        )
    )

    # Ring accounts.
    ring = _build_rings(rnd, ring_sizes, ring_city, nominee, registries, hubs, hub)
    r_acc = n_honest + np.arange(n_ring)
    ring_of = np.repeat(np.arange(n_rings), ring_sizes)
    r_company = np.full(n_ring, -1, dtype=np.int64)
    shell = rng.random(n_ring) < 0.15
    r_company[shell] = companies.add(int(shell.sum()), city=ring_city[ring_of[shell]])
    r_address = addresses.add(
        n_ring, city=rng.choice(len(CITIES), size=n_ring, p=city_weights), kind=_ADDR_HOME
    )
    r_phone = phones.add(n_ring)
    r_email = emails.add(n_ring, person=nominee)
    ring_platforms = rng.choice(len(PLATFORMS), size=(n_rings, 2), p=_normalised(_PLATFORM_P_RING))
    r_platform = ring_platforms[ring_of, (rng.random(n_ring) < 0.3).astype(np.int64)]
    label_name = np.where(
        rng.random(n_ring) < 0.6,
        label_person[ring_of, rng.integers(0, 2, n_ring)] if n_rings else nominee,
        nominee,
    )
    roles = [
        (np.ones(n_ring, bool), _ROLE_RETURN, ring.return_address),
        (ring.warehouse_address >= 0, _ROLE_WAREHOUSE, ring.warehouse_address),
        (ring.hub_warehouse >= 0, _ROLE_WAREHOUSE, ring.hub_warehouse),
        (
            rng.random(n_ring) < 0.6,
            _ROLE_SHIP_FROM,
            np.where(ring.warehouse_address >= 0, ring.warehouse_address, ring.return_address),
        ),
    ]
    # Upstream suppliers (own random stream, so the rest of the population does not move).
    ring_start = np.concatenate([[0], np.cumsum(ring_sizes)[:-1]]).astype(np.int64)
    suppliers = _plan_suppliers(
        _stage_rng(params.seed, 6),
        ring_start,
        ring_sizes,
        # A supplier warehouse row goes to an account without a warehouse row; an agent's
        # phone replaces the label phone on a ship-from row (so no account passes four rows).
        {
            _SUPPLIER_WAREHOUSE: (ring.warehouse_address < 0) & (ring.hub_warehouse < 0),
            _SUPPLIER_PHONE: next(mask for mask, role, _ in roles if role == _ROLE_SHIP_FROM),
        },
        params.supplier_share,
    )
    supplier_address = addresses.add(
        suppliers.count[_SUPPLIER_WAREHOUSE],
        city=suppliers.rng.choice(cn_hub_cities, suppliers.count[_SUPPLIER_WAREHOUSE]),
        kind=_ADDR_BUSINESS,
    )
    supplier_phone = phones.add(suppliers.count[_SUPPLIER_PHONE])
    agent = suppliers.of_account[_SUPPLIER_PHONE]
    for mask, role, address in roles:
        k = int(mask.sum())
        phone = ring.label_phone
        if role == _ROLE_SHIP_FROM and len(supplier_phone):
            phone = np.where(agent >= 0, supplier_phone[np.maximum(agent, 0)], phone)
        log_rows.append(
            (r_acc[mask], np.full(k, role), address[mask], label_name[mask], phone[mask])
        )
    use = rng.random(n_ring) < min(1.0, _P_PICKUP * hub)
    k = int(use.sum())
    log_rows.append(
        (
            r_acc[use],
            np.full(k, _ROLE_PICKUP),
            rng.choice(hubs["pickup"], size=k),
            label_name[use],
            ring.label_phone[use],
        )
    )
    depot = suppliers.of_account[_SUPPLIER_WAREHOUSE]
    use = depot >= 0
    log_rows.append(
        (
            r_acc[use],
            np.full(int(use.sum()), _ROLE_WAREHOUSE),
            supplier_address[depot[use]],
            label_name[use],
            ring.label_phone[use],
        )
    )
    r_pay_account = ring.pay_account + n_honest
    collect = (rng.random(n_ring) < min(1.0, _P_COLLECTION * hub)) & (
        np.bincount(ring.pay_account, minlength=n_ring) < 3
    )
    k = int(collect.sum())
    r_pay_account = np.concatenate([r_pay_account, r_acc[collect]])
    r_pay_instrument = np.concatenate(
        [ring.pay_instrument, hubs["collection"][_zipf_choice(rng, len(hubs["collection"]), k)]]
    )

    logistics = [np.concatenate(parts) for parts in zip(*log_rows, strict=True)]
    return _World(
        n_accounts=n_accounts,
        entity=np.concatenate([h_entity, n_honest_entities + ring_of]),
        is_ring=np.concatenate([np.zeros(n_honest, bool), np.ones(n_ring, bool)]),
        person=np.concatenate([owner, nominee]),
        company=np.concatenate([e_company[h_entity], r_company]),
        phone=np.concatenate([h_phone, r_phone]),
        email=np.concatenate([h_email, r_email]),
        ip=np.concatenate([h_ip, ring.ip]),
        device=np.concatenate([h_device, ring.device]),
        address=np.concatenate([e_address[h_entity], r_address]),
        platform=np.concatenate([h_platform, r_platform]),
        registered_at=np.concatenate([h_opened, ring.registered_at]),
        n_entities=n_entities,
        entity_kind=entity_kind,
        household=household,
        pay_account=np.concatenate([h_pay_account, r_pay_account]),
        pay_instrument=np.concatenate([h_pay_instrument, r_pay_instrument]),
        log_account=logistics[0],
        log_role=logistics[1],
        log_address=logistics[2],
        log_person=logistics[3],
        log_phone=logistics[4],
        persons=persons,
        companies=companies,
        phones=phones,
        emails=emails,
        devices=devices,
        ips=ips,
        addresses=addresses,
        instruments=instruments,
        hubs=hubs,
        supplier_links=np.column_stack(
            [suppliers.links[:, :2] + n_honest_entities, suppliers.links[:, 2:]]
        ),
    )


# --------------------------------------------------------------------------------------------
# Canonical values of the registries
# --------------------------------------------------------------------------------------------


def _redraw_duplicates(values: np.ndarray, redraw: Callable[[int], np.ndarray]) -> np.ndarray:
    """Replace later duplicates in `values` by fresh draws until every value is unique."""
    values = values.copy()
    for _ in range(100):
        _, first_index = np.unique(values, return_index=True)
        duplicate = np.ones(len(values), dtype=bool)
        duplicate[first_index] = False
        k = int(duplicate.sum())
        if not k:
            return values
        values[duplicate] = redraw(k)
    raise RuntimeError("could not draw unique values; the value space is too small")


def _make_phone_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Distinct Chinese mobile numbers (11 digits, valid prefixes)."""
    prefixes = np.asarray(_MOBILE_PREFIXES, dtype=np.int64)

    def draw(k: int) -> np.ndarray:
        return rng.choice(prefixes, size=k) * 100_000_000 + rng.integers(0, 100_000_000, k)

    return [str(v) for v in _redraw_duplicates(draw(n), draw).tolist()]


def _make_emails(rng: np.random.Generator, persons: _Persons, owner: np.ndarray) -> list[str]:
    """Distinct email addresses built from the owner's name, a word, or a QQ number."""
    n = len(owner)
    template = rng.choice(6, size=n, p=[0.3, 0.15, 0.15, 0.15, 0.1, 0.15])
    domain = rng.choice(len(EMAIL_DOMAINS), size=n, p=_normalised(_EMAIL_DOMAIN_P))
    number = rng.integers(0, 10_000, size=n)
    qq = rng.integers(10_000, 3_999_999_999, size=n)
    word = rng.integers(0, len(_EMAIL_WORDS), size=n)
    surname_latin = [s[1].lower() for s in _SURNAMES]
    given = persons.given_latin
    seen: dict[str, int] = {}
    out: list[str] = []
    for person, sur, t, d, num, q, wd in zip(
        owner.tolist(),
        persons.surname[owner].tolist(),
        template.tolist(),
        domain.tolist(),
        number.tolist(),
        qq.tolist(),
        word.tolist(),
        strict=True,
    ):
        s, g, dom = surname_latin[sur], given[person].lower(), EMAIL_DOMAINS[d]
        if t == 0:
            local = f"{s}{g}{num % 100:02d}"
        elif t == 1:
            local = f"{g}.{s}"
        elif t == 2:
            local, dom = str(q), "qq.com"
        elif t == 3:
            local = f"{s[0]}{g[0]}{num}"
        elif t == 4:
            local = f"{_EMAIL_WORDS[wd]}{num}"
        else:
            local = f"{s}_{g}{num % 1000}"
        email = f"{local}@{dom}"
        while email in seen:
            seen[email] += 1
            email = f"{local}{seen[email]}@{dom}"
        seen[email] = 0
        out.append(email)
    return out


def _make_devices(rng: np.random.Generator, kind: np.ndarray) -> list[str]:
    """Device fingerprints: 32-hex (Android), upper-case UUID (iOS) or 16-hex."""
    hexes = rng.bytes(16 * len(kind)).hex()
    out = []
    for i, k in enumerate(kind.tolist()):
        h = hexes[32 * i : 32 * i + 32]
        if k == 0:
            out.append(h)
        elif k == 1:
            out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".upper())
        else:
            out.append(h[:16])
    return out


_FIXED_FIRST_OCTETS = (
    27,
    36,
    58,
    59,
    60,
    61,
    106,
    110,
    111,
    113,
    114,
    115,
    116,
    119,
    120,
    121,
    122,
    123,
    124,
    125,
    175,
    180,
    182,
    183,
    218,
    219,
    220,
    221,
    222,
)
_NAT_PREFIXES = ((223, 104), (117, 136), (112, 97), (39, 144), (223, 73), (117, 188))


def _make_ips(rng: np.random.Generator, kind: np.ndarray) -> list[str]:
    """Registration IPs: fixed-line IPv4 (some IPv6) and mobile-carrier NAT addresses."""
    n = len(kind)
    first = np.asarray(_FIXED_FIRST_OCTETS, dtype=np.int64)
    nat = np.asarray(_NAT_PREFIXES, dtype=np.int64)
    is_nat = kind == _IP_NAT

    def draw(k: int) -> np.ndarray:
        return rng.choice(first, size=k) * 2**24 + rng.integers(0, 2**24, size=k)

    value = _redraw_duplicates(draw(n), draw)
    pick = nat[rng.integers(0, len(nat), size=n)]
    nat_value = pick[:, 0] * 2**24 + pick[:, 1] * 2**16 + rng.integers(0, 2**16, size=n)
    value = np.where(is_nat, nat_value, value)
    v6 = (~is_nat) & (rng.random(n) < 0.05)
    groups = rng.integers(0, 2**16, size=(n, 4)).tolist()
    return [
        f"240e:{g[0]:x}:{g[1]:x}:{g[2]:x}::{g[3]:x}"
        if six
        else f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
        for v, six, g in zip(value.tolist(), v6.tolist(), groups, strict=True)
    ]


@dataclass
class _Addresses:
    """Structured addresses, by address id."""

    city: np.ndarray
    district: np.ndarray
    road: np.ndarray
    road_kind: np.ndarray
    number: np.ndarray
    room: np.ndarray  # 0: none
    postcode: np.ndarray  # -1: none


def _make_addresses(rng: np.random.Generator, city: np.ndarray, kind: np.ndarray) -> _Addresses:
    """Draw district, road, number and room for each address; no two addresses are equal."""
    n = len(city)
    n_districts = np.asarray([len(c.districts) for c in CITIES])[city]
    n_roads = np.asarray([len(c.roads or _CN_ROADS) for c in CITIES])[city]
    district = (rng.random(n) * n_districts).astype(np.int64)
    road = (rng.random(n) * n_roads).astype(np.int64)
    road_kind = (rng.random(n) < 0.15).astype(np.int64)
    with_room = np.where(kind == _ADDR_HOME, 0.92, np.where(kind == _ADDR_BUSINESS, 0.5, 0.0))
    has_room = rng.random(n) < with_room

    def draw_number(k: int) -> np.ndarray:
        return rng.integers(1, 1000, size=k)

    def draw_room(k: int) -> np.ndarray:
        return rng.integers(1, 33, size=k) * 100 + rng.integers(1, 9, size=k)

    number = draw_number(n)
    room = np.where(has_room, draw_room(n), 0)
    base = (((city * 8 + district) * 64 + road) * 2 + road_kind) * 1000
    key = (base + number) * 4000 + room

    def redraw(k: int) -> np.ndarray:
        # Only the number and room change; the key keeps city, district and road.
        return rng.integers(1, 1000, size=k) * 4000 + rng.integers(1, 33, size=k) * 100 + 9

    for _ in range(100):
        _, first_index = np.unique(key, return_index=True)
        duplicate = np.ones(n, dtype=bool)
        duplicate[first_index] = False
        k = int(duplicate.sum())
        if not k:
            break
        fresh = redraw(k)
        key[duplicate] = base[duplicate] * 4000 + fresh
    number = (key // 4000) % 1000
    room = key % 4000
    # CN postcodes have six digits, US ZIP codes five, Hong Kong none (-1).
    prefix = np.asarray([int(c.postcode_prefix or -1) for c in CITIES])[city]
    scale = np.asarray([100 if c.country == "US" else 1000 for c in CITIES])[city]
    postcode = np.where(prefix >= 0, prefix * scale + rng.integers(0, 1000, size=n) % scale, -1)
    return _Addresses(city, district, road, road_kind, number, room, postcode)


@dataclass
class _Companies:
    """Company names (Han and Latin parts) and registration numbers, by company id."""

    city: np.ndarray
    word1: np.ndarray
    word2: np.ndarray
    shop_word: np.ndarray  # -1: none
    industry: np.ndarray
    id_number: list[str]


def _make_companies(rng: np.random.Generator, city: np.ndarray) -> _Companies:
    """Distinct company names; CN companies get a valid USCC, foreign ones a local number."""
    n = len(city)
    n_w, n_s, n_i = len(_COMPANY_WORDS), len(_SHOP_WORDS) + 1, len(_INDUSTRIES)

    def draw(k: int) -> np.ndarray:
        return (
            (rng.integers(0, n_w, k) * n_w + rng.integers(0, n_w, k)) * n_s
            + rng.integers(0, n_s, k)
        ) * n_i + rng.integers(0, n_i, k)

    # Distinct within a city: redraw the name part while city and name repeat.
    name = draw(n)
    for _ in range(100):
        key = city * (n_w * n_w * n_s * n_i) + name
        _, first_index = np.unique(key, return_index=True)
        duplicate = np.ones(n, dtype=bool)
        duplicate[first_index] = False
        if not duplicate.any():
            break
        name[duplicate] = draw(int(duplicate.sum()))
    industry = name % n_i
    shop_word = (name // n_i) % n_s - 1
    word2 = (name // (n_i * n_s)) % n_w
    word1 = name // (n_i * n_s * n_w)

    # Organisation code: eight digits and a digit-or-letter; distinct across companies.
    def draw_code(k: int) -> np.ndarray:
        last = np.where(rng.random(k) < 0.2, rng.integers(10, 31, k), rng.integers(0, 10, k))
        return rng.integers(0, 10**8, k) * 31 + last

    code = _redraw_duplicates(draw_code(n), draw_code)
    country = [CITIES[c].country for c in city.tolist()]
    stems = [
        f"91{CITIES[c].uscc_region}{v // 31:08d}{_USCC_ALPHABET[v % 31]}"
        for c, v in zip(city.tolist(), code.tolist(), strict=True)
    ]
    cn = [i for i, k in enumerate(country) if k == "CN"]
    id_number = [
        f"{d:08d}" if k == "HK" else f"{d // 10**6 % 100:02d}-{d % 10**7:07d}"
        for k, d in zip(country, (code // 31).tolist(), strict=True)
    ]
    for i, check in zip(cn, _uscc_check_digits([stems[i] for i in cn]), strict=True):
        id_number[i] = stems[i] + check
    return _Companies(city, word1, word2, shop_word, industry, id_number)


def _make_person_ids(rng: np.random.Generator, persons: _Persons) -> list[str]:
    """Identity document numbers: valid CN_RIC (stdnum check digit), passports, permits."""
    n = len(persons.country)
    first_years = np.asarray([r[0] for r in _RIC_REGIONS])
    year = persons.birth.astype("datetime64[Y]").astype(np.int64) + 1970
    valid = np.searchsorted(first_years, year, side="right")
    region = (rng.random(n) * valid).astype(np.int64)
    sequence = rng.integers(0, 1000, size=n)
    birth = np.datetime_as_string(persons.birth, unit="D").tolist()
    key = (region * 100_000 + (persons.birth.astype(np.int64) + 40_000)) * 1000 + sequence

    for _ in range(100):
        _, first_index = np.unique(key, return_index=True)
        duplicate = np.ones(n, dtype=bool)
        duplicate[first_index] = False
        if not duplicate.any():
            break
        sequence[duplicate] = rng.integers(0, 1000, size=int(duplicate.sum()))
        key = (region * 100_000 + (persons.birth.astype(np.int64) + 40_000)) * 1000 + sequence
    passport = rng.integers(0, 10**8, size=n).tolist()
    codes = [r[1] for r in _RIC_REGIONS]
    out = []
    for t, b, r, q, country, pp in zip(
        persons.id_type.tolist(),
        birth,
        region.tolist(),
        sequence.tolist(),
        persons.country.tolist(),
        passport,
        strict=True,
    ):
        if t == _ID_RIC:
            stem = f"{codes[r]}{b[:4]}{b[5:7]}{b[8:10]}{q:03d}"
            out.append(stem + ric.calc_check_digit(stem + "0"))
        elif t == _ID_PASSPORT:
            out.append(f"{('E', 'K', '5')[country]}{pp:08d}")
        else:
            out.append(f"C{pp:08d}")
    return out


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.asarray([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])


def _digit_matrix(stems: Sequence[str], length: int) -> np.ndarray:
    """ASCII stems of one length as an (n, length) array of byte values."""
    raw = np.frombuffer("".join(stems).encode("ascii"), dtype=np.uint8)
    return raw.reshape(len(stems), length).astype(np.int64)


def _luhn_check_digits(stems: Sequence[str]) -> list[str]:
    """Luhn check digits of digit strings, vectorised per length.

    Equal to `stdnum.luhn.calc_check_digit` (the tests compare them); a per-number call costs
    about 10 us, too much for a million cards.
    """
    out = [""] * len(stems)
    lengths = np.asarray([len(s) for s in stems], dtype=np.int64)
    for length in np.unique(lengths).tolist():
        where = np.flatnonzero(lengths == length)
        digits = _digit_matrix([stems[i] for i in where.tolist()], length) - 48
        # With the check digit appended, the stem's last digit sits at an even position from
        # the right and is doubled, as is every second digit before it.
        doubled = np.zeros(length, dtype=bool)
        doubled[length - 1 :: -2] = True
        d = np.where(doubled, digits * 2, digits)
        d = np.where(d > 9, d - 9, d)
        check = (10 - d.sum(axis=1) % 10) % 10
        for i, c in zip(where.tolist(), check.tolist(), strict=True):
            out[i] = str(c)
    return out


def _uscc_check_digits(stems: Sequence[str]) -> list[str]:
    """USCC check characters of 17-character stems (same rule as `stdnum.cn.uscc`)."""
    if not stems:
        return []
    lookup = np.zeros(128, dtype=np.int64)
    for i, ch in enumerate(_USCC_ALPHABET):
        lookup[ord(ch)] = i
    values = lookup[_digit_matrix(stems, 17)]
    total = (values * _USCC_WEIGHTS).sum(axis=1)
    return [_USCC_ALPHABET[c] for c in ((31 - total) % 31).tolist()]


def _make_instruments(rng: np.random.Generator, kind: np.ndarray, bank: np.ndarray) -> list[str]:
    """Instrument numbers: Luhn-valid cards with real issuer BINs, bank accounts, Alipay ids,
    WeChat wallet ids, payment-service accounts."""
    n = len(kind)
    out: list[str] = [""] * n
    # Cards: BIN + random digits + Luhn check digit; distinct.
    cards = np.flatnonzero(kind == _KIND_CARD)
    bins = [b for entry in _BANKS for b in entry[3]]
    bins_of_bank = [[bins.index(b) for b in entry[3]] for entry in _BANKS]
    choice = rng.random(len(cards))
    bin_index = np.asarray(
        [
            bins_of_bank[b][int(u * len(bins_of_bank[b]))]
            for b, u in zip(bank[cards].tolist(), choice.tolist(), strict=True)
        ],
        dtype=np.int64,
    )

    def draw_body(k: int) -> np.ndarray:
        return rng.integers(0, 10**12, size=k)

    body = bin_index * 10**12 + draw_body(len(cards))
    body = _redraw_duplicates(
        body, lambda k: rng.choice(np.arange(len(bins)), k) * 10**12 + draw_body(k)
    )
    stems = []
    for b in body.tolist():
        prefix, length = bins[b // 10**12]
        stems.append(prefix + f"{b % 10**12:012d}"[-(length - 7) :])
    for i, stem, check in zip(cards.tolist(), stems, _luhn_check_digits(stems), strict=True):
        out[i] = stem + check
    # Bank accounts, Alipay ids, payment-service accounts: distinct digit strings.
    for k_kind, lengths in (
        (_KIND_BANK, (16, 17, 19)),
        (_KIND_ALIPAY, (16,)),
        (_KIND_OTHER, (16, 18)),
    ):
        where = np.flatnonzero(kind == k_kind)

        def draw(k: int) -> np.ndarray:
            return rng.integers(10**11, 10**15, size=k)

        values = _redraw_duplicates(draw(len(where)), draw)
        length = rng.choice(np.asarray(lengths), size=len(where))
        lead = rng.integers(1, 10, size=len(where))
        for i, v, ln, ld in zip(
            where.tolist(), values.tolist(), length.tolist(), lead.tolist(), strict=True
        ):
            if k_kind == _KIND_ALIPAY:
                out[i] = f"2088{v % 10**12:012d}"
            else:
                out[i] = f"{ld}{v:0{ln - 1}d}"[:ln]
    wallets = np.flatnonzero(kind == _KIND_WALLET)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    chars = rng.integers(0, len(letters), size=(len(wallets), 14))
    for i, row in zip(wallets.tolist(), chars.tolist(), strict=True):
        out[i] = "wxid_" + "".join(letters[c] for c in row)
    return out


# --------------------------------------------------------------------------------------------
# Rendering: canonical values written the many ways people type them
# --------------------------------------------------------------------------------------------

_PHONE_FORMATS: tuple[Callable[[str], str], ...] = (
    lambda d: d,
    lambda d: f"+86 {d[:3]}-{d[3:7]}-{d[7:]}",
    lambda d: f"0086 {d}",
    lambda d: f"{d[:3]} {d[3:7]} {d[7:]}",
    lambda d: f"+86{d}",
    lambda d: f"(+86) {d[:3]} {d[3:7]} {d[7:]}",
    lambda d: f"{d[:3]}-{d[3:7]}-{d[7:]}",
    lambda d: d.translate(_FULLWIDTH_DIGITS),
    lambda d: f"+86-{d}",
    lambda d: f" {d} ",
)
_PHONE_WEIGHTS = (0.22, 0.12, 0.15, 0.12, 0.08, 0.08, 0.05, 0.08, 0.1)


def _group4(s: str, sep: str) -> str:
    return sep.join(s[i : i + 4] for i in range(0, len(s), 4))


_CARD_FORMATS: tuple[Callable[[str], str], ...] = (
    lambda d: d,
    lambda d: _group4(d, " "),
    lambda d: _group4(d, "-"),
    lambda d: f" {d}  ",
    lambda d: _group4(d, "  "),
)
_CARD_WEIGHTS = (0.5, 0.25, 0.15, 0.1)
_BANK_ACCOUNT_FORMATS: tuple[Callable[[str], str], ...] = (
    lambda d: d,
    lambda d: _group4(d, " "),
    lambda d: f"{d[:4]} {d[4:]}",
)
_BANK_ACCOUNT_WEIGHTS = (0.7, 0.3)
_ID_FORMATS: tuple[Callable[[str], str], ...] = (
    lambda d: d,
    lambda d: d.lower(),
    lambda d: f" {d} ",
    lambda d: f"{d[:6]} {d[6:14]} {d[14:]}",
    lambda d: d.lower().translate(_FULLWIDTH_DIGITS),
    lambda d: f"{d}\t",
)
_ID_WEIGHTS = (0.45, 0.2, 0.15, 0.05, 0.15)
_DEVICE_FORMATS: tuple[Callable[[str], str], ...] = (
    lambda d: d,
    lambda d: d.upper() if d.islower() or d.isdigit() else d.lower(),
    lambda d: f" {d}",
)
_DEVICE_WEIGHTS = (0.8, 0.2)
_TEXT_FORMATS: tuple[Callable[[str], str], ...] = (
    lambda s: s,
    lambda s: f" {s}",
    lambda s: f"{s}  ",
    lambda s: s.upper(),
    lambda s: s.lower(),
    lambda s: s.translate(_FULLWIDTH),
)
_TEXT_WEIGHTS = (0.3, 0.3, 0.15, 0.15, 0.1)


def _render_email(email: str, variant: int, salt: int) -> str:
    local, _, domain = email.partition("@")
    if variant == 0:
        return email
    if variant == 1:
        return email.upper()
    if variant == 2:
        return local.capitalize() + "@" + domain
    if variant == 3:
        return local + "@" + domain.upper()
    if variant == 4:
        return f" {email} "
    if domain == "gmail.com" and variant == 5:
        cut = 1 + salt % max(1, len(local) - 1)
        return f"{local[:cut]}.{local[cut:]}@{domain}".replace("..", ".")
    if domain == "gmail.com" and variant == 6:
        return f"{local}+{('shop', 'tb', 'ali', 'store')[salt % 4]}@{domain}"
    return local.capitalize() + "@" + domain


_EMAIL_WEIGHTS = (0.15, 0.25, 0.15, 0.1, 0.2, 0.15)

_SURNAME_HAN = tuple(s[0] for s in _SURNAMES)
_SURNAME_LATIN = tuple(s[1] for s in _SURNAMES)


def _render_name(sur_han: str, given_han: str, sur: str, given: str, variant: int) -> str:
    """A person's name: Han or pinyin, surname- or given-name-first, any case or width."""
    if variant == 0:
        return sur_han + given_han
    if variant == 1:
        return f"{sur_han} {given_han}"
    if variant == 2:
        return f"{sur} {given}"
    if variant == 3:
        return f"{sur.upper()} {given}"
    if variant == 4:
        return f"{given} {sur}"
    if variant == 5:
        return f"{sur} {given}".lower()
    if variant == 6:
        return f"{sur} {given}".upper()
    if variant == 7:
        return f"{given} {sur.upper()}"
    if variant == 8:
        return f"{sur} {given}".translate(_FULLWIDTH)
    return f" {sur_han}{given_han} "


_NAME_WEIGHTS = (0.1, 0.35, 0.12, 0.15, 0.08, 0.08, 0.04, 0.03, 0.05)


def _render_company(c: _City, w1: int, w2: int, shop: int, industry: int, variant: int) -> str:
    """A company name: Han with or without 市, or an English form."""
    a, b = _COMPANY_WORDS[w1], _COMPANY_WORDS[w2]
    s = _SHOP_WORDS[shop] if shop >= 0 else ("", "")
    ind = _INDUSTRIES[industry]
    if c.latin_only:
        latin = f"{a[1]} {b[1]} {ind[1]} " + ("Limited" if c.country == "HK" else "LLC")
        return latin.upper() if variant in (1, 3) else latin
    if variant == 0:
        return f"{c.city_han}市{a[0]}{b[0]}{s[0]}{ind[0]}有限公司"
    if variant == 1:
        return f"{c.city_han}{a[0]}{b[0]}{s[0]}{ind[0]}有限公司"
    words = " ".join(w for w in (a[1], b[1], s[1], ind[1]) if w)
    if variant == 2:
        return f"{c.city_latin} {words} Co., Ltd."
    if variant == 3:
        return f"{c.city_latin} {words} CO LTD".upper()
    return f"{words} ({c.city_latin}) Co., Ltd"


_COMPANY_WEIGHTS = (0.4, 0.3, 0.15, 0.15)


def _render_address(
    c: _City,
    district: int,
    road: int,
    road_kind: int,
    number: int,
    room: int,
    noisy: bool,
    bits: int,
) -> str:
    """One address written in Han or Latin letters, with dropped suffixes and stray marks.

    Every rendering of one address keeps the same place names, road kind, numbers and
    order-insensitive content, so a normaliser that romanises, lower-cases, drops the generic
    words (省 市 区 号 室, No, Room, Rm, District, Province) and reads 路 / Road / Rd and
    街 / Street / St as two words finds them equal. Two addresses may differ only by their
    road kind (人民路 8号 and 人民街 8号): they are two places.
    """
    if not noisy and not c.latin_only:  # the common case, kept fast
        text = f"{c.han_prefixes[district]}{_CN_ROADS[road][0]}{_ROAD_KINDS[road_kind][0]}"
        return f"{text}{number}号{room}室" if room else f"{text}{number}号"
    d_han, d_latin = c.districts[district]
    r_han, r_latin = (c.roads or _CN_ROADS)[road]
    k_han, k_long, k_short = _ROAD_KINDS[road_kind]
    latin = c.latin_only or (noisy and bits & 0x3 == 0)
    if not latin:
        drop = noisy and bits & 0x4
        drop_district = noisy and bits & 0x8
        province = "" if c.municipality else c.province_han + ("" if drop else "省")
        parts = [
            province,
            c.city_han + ("" if drop else "市"),
            d_han + ("" if drop_district else "区"),
            r_han + k_han,
            (f"No.{number} " if noisy and bits & 0x10 and bits & 0x20 else f"{number}号")
            + (f"{room}室" if room else ""),
        ]
        if not noisy:
            return "".join(parts)
        sep = (" ", "", "", "，", "", "\u3000", "", "")[(bits >> 6) & 7]
        text = sep.join(p for p in parts if p)
        if bits & 0x200 and bits & 0x400:
            text = text.translate(_FULLWIDTH_DIGITS)
        return (" " if bits & 0x800 else "") + text + ("", " ", "。", ",")[(bits >> 12) & 3]
    kind = k_short if noisy and bits & 0x4 else k_long
    room_word = "Rm" if noisy and bits & 0x8 else "Room"
    if c.latin_only:
        street = f"{number} {r_latin} {kind}"
        parts = [
            street,
            f"{room_word} {room}" if room else "",
            d_latin,
            c.city_latin,
            c.province_latin,
        ]
    else:
        form = (bits >> 4) & 3 if noisy else 0
        street = (
            f"No. {number} {r_latin} {kind}",
            f"{number} {r_latin} {kind}",
            f"{r_latin} {kind} No.{number}",
            f"No.{number}, {r_latin} {kind}",
        )[form]
        district_word = "" if noisy and bits & 0x40 else " District"
        province = (
            ""
            if c.municipality
            else c.province_latin + (" Province" if noisy and bits & 0x80 else "")
        )
        parts = [
            f"{room_word} {room}" if room else "",
            street,
            d_latin + district_word,
            c.city_latin,
            province,
        ]
    text = ", ".join(p for p in parts if p)
    if noisy:
        case = (bits >> 8) & 3
        text = text.upper() if case == 1 else text.lower() if case == 2 else text
        text = text + ("", " ", ".", ";")[(bits >> 12) & 3]
    return text


def _render_shop_names(rng: np.random.Generator, is_ring: np.ndarray) -> list[str]:
    """Storefront names in Han, Latin, mixed and a few other scripts.

    Most ring shops (and a few honest resellers) trade on a luxury brand's name; the rest look
    like any other shop, so the name alone does not give a ring away.
    """
    n = len(is_ring)
    brand_style = rng.random(n) < np.where(is_ring, 0.6, 0.03)
    template = rng.integers(0, 10, size=n)
    w = rng.integers(0, len(_SHOP_WORDS), size=n)
    w2 = rng.integers(0, len(_SHOP_WORDS), size=n)
    lux = rng.integers(0, len(_LUXURY), size=n)
    sfx = rng.integers(0, 60, size=n)
    out = []
    for ring_shop, t, a, b, x, s in zip(
        brand_style.tolist(),
        template.tolist(),
        w.tolist(),
        w2.tolist(),
        lux.tolist(),
        sfx.tolist(),
        strict=True,
    ):
        word, other = _SHOP_WORDS[a], _SHOP_WORDS[b]
        if ring_shop:
            brand = _LUXURY[x]
            if t < 4:
                out.append(brand[0] + _RING_SHOP_SUFFIX_HAN[s % len(_RING_SHOP_SUFFIX_HAN)])
            elif t < 7:
                out.append(f"{brand[1]} {_RING_SHOP_SUFFIX_LATIN[s % 5]}")
            elif t < 8:
                out.append(f'"正品"{brand[0]}{other[0]}特卖')
            elif t < 9:
                out.append(f"{brand[1]} Shoes, Bags & More")
            else:
                out.append(f"{brand[0]} {brand[1]} {word[1]}")
        elif t < 4:
            out.append(word[0] + other[0] + _SHOP_SUFFIX_HAN[s % len(_SHOP_SUFFIX_HAN)])
        elif t < 7:
            out.append(f"{word[1]} {other[1]} {_SHOP_SUFFIX_LATIN[s % 6]}")
        elif t < 8:
            out.append(f"{word[0]}{other[0]} {word[1]} {_SHOP_SUFFIX_LATIN[s % 6]}")
        elif t < 9:
            out.append(
                (
                    f"{word[1]} ストア",
                    f"{word[1]} 스토어",
                    f"Магазин {word[1]}",
                    f"{word[0]}の店",
                    f"{word[1]}'s Home, Garden & Gifts",
                )[s % 5]
            )
        else:
            out.append(f"{word[0]}{s}号店")
    return out


def _apply_nulls(
    rng: np.random.Generator, values: list[Any], rate: float, protect: np.ndarray | None = None
) -> list[Any]:
    """Set a share `rate` of values to None (never where `protect` is true)."""
    mask = rng.random(len(values)) < rate
    if protect is not None:
        mask &= ~protect
    for i in np.flatnonzero(mask).tolist():
        values[i] = None
    return values


def _timestamps(seconds: np.ndarray, missing: np.ndarray) -> pd.Series:
    """UTC timestamps with microsecond precision (what Spark reads as TimestampType)."""
    values = seconds.astype("datetime64[s]").astype("datetime64[us]")
    values[missing] = np.datetime64("NaT")
    return pd.Series(values).dt.tz_localize("UTC")


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------

_MALFORMED_KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    cols.ACCOUNTS: (
        ("empty_account_id", cols.ACCOUNT_ID),
        ("null_account_id", cols.ACCOUNT_ID),
        ("duplicate_account_id", cols.ACCOUNT_ID),
    ),
    cols.PAYMENT_INSTRUMENTS: (
        ("orphan_account_id", cols.ACCOUNT_ID),
        ("null_instrument_id", cols.INSTRUMENT_ID),
        ("invalid_instrument_type", cols.INSTRUMENT_TYPE),
    ),
    cols.LOGISTICS: (
        ("orphan_account_id", cols.ACCOUNT_ID),
        ("invalid_role", cols.ROLE),
        ("negative_shipment_count", cols.SHIPMENT_COUNT),
    ),
    cols.ENFORCEMENT_SIGNALS: (
        ("orphan_account_id", cols.ACCOUNT_ID),
        ("negative_signal_count", cols.SIGNAL_COUNT),
        ("invalid_signal_type", cols.SIGNAL_TYPE),
    ),
}
_TIMESTAMP_COLUMN = {
    cols.ACCOUNTS: cols.REGISTERED_AT,
    cols.PAYMENT_INSTRUMENTS: cols.ADDED_AT,
    cols.LOGISTICS: cols.FIRST_USED_AT,
    cols.ENFORCEMENT_SIGNALS: cols.OBSERVED_AT,
}


@dataclass
class _Layout:
    """Row order of one dataset: which valid row each output row renders, already shuffled.

    Malformed rows are extra copies of valid rows (so the valid data and the truth stay
    whole); `extra_position[i]` is where copy i lands and `kinds[i]` what is wrong with it.
    """

    source: np.ndarray
    extra_position: np.ndarray
    kinds: list[str]
    columns: list[str]
    csv_positions: np.ndarray  # valid rows whose timestamp is unparseable in CSV output

    def extras(self) -> list[tuple[int, int, str]]:
        """(copy number, output position, kind) of every malformed copy."""
        return [
            (i, p, k)
            for i, (p, k) in enumerate(zip(self.extra_position.tolist(), self.kinds, strict=True))
        ]


def _plan_layout(rng: np.random.Generator, dataset: str, n_valid: int, rate: float) -> _Layout:
    """Shuffle the rows and add exactly round(rate * n_valid) malformed copies.

    The kinds cycle through the dataset's list, so every kind appears once the rate gives at
    least three rows. Another round(rate * n_valid) valid rows get an unparseable timestamp
    in CSV output only.
    """
    m = int(round(rate * n_valid)) if n_valid else 0
    kinds = _MALFORMED_KINDS[dataset]
    copied = rng.choice(n_valid, size=m, replace=m > n_valid) if m else np.zeros(0, np.int64)
    csv_valid = (
        rng.choice(n_valid, size=min(m, n_valid), replace=False) if m else np.zeros(0, np.int64)
    )
    rows = np.concatenate([np.arange(n_valid), np.asarray(copied, dtype=np.int64)])
    order = rng.permutation(len(rows))
    position = np.empty(len(rows), dtype=np.int64)
    position[order] = np.arange(len(rows))
    return _Layout(
        source=rows[order],
        extra_position=position[n_valid:],
        kinds=[kinds[i % len(kinds)][0] for i in range(m)],
        columns=[kinds[i % len(kinds)][1] for i in range(m)],
        csv_positions=np.sort(position[np.asarray(csv_valid, dtype=np.int64)]),
    )


def _manifest(dataset: str, layout: _Layout, frame: pd.DataFrame) -> pd.DataFrame:
    """The malformed rows of one dataset as written (CSV-only timestamps need a value)."""
    ts_column = _TIMESTAMP_COLUMN[dataset]
    csv_rows = layout.csv_positions[frame[ts_column].iloc[layout.csv_positions].notna().to_numpy()]
    rows = np.concatenate([layout.extra_position, csv_rows]).astype(np.int64)
    part = pd.DataFrame(
        {
            "dataset": [dataset] * len(rows),
            "row": rows,
            "kind": layout.kinds + ["unparseable_timestamp"] * len(csv_rows),
            "column": layout.columns + [ts_column] * len(csv_rows),
            cols.ACCOUNT_ID: frame[cols.ACCOUNT_ID].iloc[rows].tolist(),
            "csv_only": np.asarray(
                [False] * len(layout.kinds) + [True] * len(csv_rows), dtype=bool
            ),
        }
    )
    return part.sort_values("row", kind="stable").reset_index(drop=True)


class _Renderer:
    """Turns the integer world into the four contract DataFrames."""

    def __init__(self, world: _World, params: GeneratorParams) -> None:
        self.world = world
        self.params = params
        self.rng = _stage_rng(params.seed, 3)
        rng = self.rng
        started = time.perf_counter()
        self.person_id_numbers = _make_person_ids(rng, world.persons)
        self.phones = _make_phone_numbers(rng, world.phones.size)
        self.emails = _make_emails(rng, world.persons, world.emails.attribute("person"))
        self.devices = _make_devices(rng, world.devices.attribute("kind"))
        self.ips = _make_ips(rng, world.ips.attribute("kind"))
        self.addresses = _make_addresses(
            rng, world.addresses.attribute("city"), world.addresses.attribute("kind")
        )
        self.companies = _make_companies(rng, world.companies.attribute("city"))
        self.instrument_kind = world.instruments.attribute("kind")
        self.instrument_bank = world.instruments.attribute("bank")
        self.instrument_person = world.instruments.attribute("person")
        self.instrument_company = world.instruments.attribute("company")
        self.instrument_psp = world.instruments.attribute("psp")
        self.instruments = _make_instruments(rng, self.instrument_kind, self.instrument_bank)
        logger.info(
            "drew canonical values in %.1f s: %d people, %d phones, %d emails, "
            "%d devices, %d IPs, %d addresses, %d instruments",
            time.perf_counter() - started,
            len(world.persons.country),
            len(self.phones),
            len(self.emails),
            len(self.devices),
            len(self.ips),
            len(self.addresses.city),
            len(self.instruments),
        )
        n_accounts = world.n_accounts
        ids = rng.integers(10**9, 10**10, size=int(n_accounts * 1.05) + 200)
        _, first_index = np.unique(ids, return_index=True)
        ids = ids[np.sort(first_index)][:n_accounts]
        if len(ids) < n_accounts:
            raise RuntimeError("could not draw enough distinct account ids")
        self.account_ids = np.asarray([f"S{v}" for v in ids.tolist()], dtype=object)
        # Ids of no account, for orphan rows; each orphan row takes the next one.
        most_rows = n_accounts + len(world.pay_account) + len(world.log_account) + 3 * n_accounts
        orphans = rng.integers(10**9, 10**10, size=int(most_rows * params.malformed_rate) + 64)
        self._orphan_ids = iter([f"S{v}" for v in orphans[~np.isin(orphans, ids)].tolist()])

    # -- shared pieces -----------------------------------------------------------------------

    def _noise(self, base: float) -> float:
        return base * self.params.noise

    def _null_rate(self) -> float:
        return _NULL_RATE * self.params.noise

    def _phones(self, phone_ids: np.ndarray) -> list[str]:
        variants = _variants(self.rng, len(phone_ids), self._noise(_NOISE_PHONE), _PHONE_WEIGHTS)
        phones = self.phones
        return _apply(_PHONE_FORMATS, [phones[i] for i in phone_ids.tolist()], variants)

    def _person_names(self, person_ids: np.ndarray, upper_bias: float = 0.0) -> list[str]:
        persons = self.world.persons
        variants = _variants(self.rng, len(person_ids), self._noise(_NOISE_NAME), _NAME_WEIGHTS)
        if upper_bias:
            variants[self.rng.random(len(person_ids)) < upper_bias * self.params.noise] = 6
        surname = persons.surname[person_ids].tolist()
        given_han, given_latin = persons.given_han, persons.given_latin
        return [
            _render_name(_SURNAME_HAN[s], given_han[p], _SURNAME_LATIN[s], given_latin[p], v)
            for s, p, v in zip(surname, person_ids.tolist(), variants.tolist(), strict=True)
        ]

    def _company_names(self, company_ids: np.ndarray) -> list[str]:
        c = self.companies
        variants = _variants(self.rng, len(company_ids), self._noise(0.6), _COMPANY_WEIGHTS)
        return [
            _render_company(CITIES[city], w1, w2, shop, industry, v)
            for city, w1, w2, shop, industry, v in zip(
                c.city[company_ids].tolist(),
                c.word1[company_ids].tolist(),
                c.word2[company_ids].tolist(),
                c.shop_word[company_ids].tolist(),
                c.industry[company_ids].tolist(),
                variants.tolist(),
                strict=True,
            )
        ]

    def _names(self, person_ids: np.ndarray, company_ids: np.ndarray) -> list[str]:
        """A company's name where the row has a company, else the person's name."""
        names = self._person_names(person_ids)
        has_company = np.flatnonzero(company_ids >= 0)
        for i, name in zip(
            has_company.tolist(), self._company_names(company_ids[has_company]), strict=True
        ):
            names[i] = name
        return names

    def _addresses(
        self, address_ids: np.ndarray
    ) -> tuple[list[str], list[str], list[str], list[str | None], list[str]]:
        """Address text, city, province, postcode and country for each address use."""
        a, rng = self.addresses, self.rng
        n = len(address_ids)
        noisy = (rng.random(n) < min(1.0, self._noise(_NOISE_ADDRESS))).tolist()
        bits = rng.integers(0, 1 << 14, size=n).tolist()
        city = a.city[address_ids].tolist()
        text = [
            _render_address(CITIES[c], d, r, k, nb, rm, z, b)
            for c, d, r, k, nb, rm, z, b in zip(
                city,
                a.district[address_ids].tolist(),
                a.road[address_ids].tolist(),
                a.road_kind[address_ids].tolist(),
                a.number[address_ids].tolist(),
                a.room[address_ids].tolist(),
                noisy,
                bits,
                strict=True,
            )
        ]
        p_text = min(1.0, self._noise(0.4))
        city_variant = np.where(rng.random(n) < p_text, rng.integers(1, 5, n), 0).tolist()
        prov_variant = np.where(rng.random(n) < p_text, rng.integers(1, 5, n), 0).tolist()
        forms = [(c.city_forms, c.province_forms, c.country) for c in CITIES]
        cities = [
            forms[c][0][v % len(forms[c][0])] for c, v in zip(city, city_variant, strict=True)
        ]
        provinces = [
            forms[c][1][v % len(forms[c][1])] for c, v in zip(city, prov_variant, strict=True)
        ]
        postcodes = [None if v < 0 else str(v) for v in a.postcode[address_ids].tolist()]
        countries = [forms[c][2] for c in city]
        return text, cities, provinces, postcodes, countries

    def _text_noise(self, values: list[str], base: float = _NOISE_TEXT) -> list[str]:
        variants = _variants(self.rng, len(values), self._noise(base), _TEXT_WEIGHTS)
        return _apply(_TEXT_FORMATS, values, variants)

    # -- datasets ----------------------------------------------------------------------------

    def accounts(self, layout: _Layout) -> pd.DataFrame:
        """Accounts rows in output order, malformed copies included."""
        w, rng = self.world, self.rng
        rows = layout.source
        n = len(rows)
        person = w.person[rows]
        company = w.company[rows]
        account_id: list[str | None] = self.account_ids[rows].tolist()
        registered = w.registered_at[rows].copy()
        for _, position, kind in layout.extras():
            if kind == "empty_account_id":
                account_id[position] = ""
            elif kind == "null_account_id":
                account_id[position] = None
            else:  # a second row under an existing id, opened again later
                registered[position] += int(rng.integers(_DAY, 90 * _DAY))
        registered = np.minimum(registered, _T_END)
        # One extra False at the end, read by company == -1 (no company).
        foreign_company = np.zeros(len(self.companies.city) + 1, dtype=bool)
        foreign_company[:-1] = [CITIES[c].country != "CN" for c in self.companies.city.tolist()]
        id_type = np.where(company >= 0, _ID_USCC, w.persons.id_type[person])
        id_type = np.where(foreign_company[company], _ID_OTHER, id_type)
        person_ids, company_ids = self.person_id_numbers, self.companies.id_number
        raw_ids = [
            company_ids[c] if c >= 0 else person_ids[p]
            for p, c in zip(person.tolist(), company.tolist(), strict=True)
        ]
        id_number = _apply(
            _ID_FORMATS, raw_ids, _variants(rng, n, self._noise(_NOISE_ID), _ID_WEIGHTS)
        )
        email_variant = _variants(rng, n, self._noise(_NOISE_EMAIL), _EMAIL_WEIGHTS)
        salt = rng.integers(0, 1000, size=n).tolist()
        all_emails = self.emails
        emails = [
            _render_email(all_emails[e], v, s)
            for e, v, s in zip(w.email[rows].tolist(), email_variant.tolist(), salt, strict=True)
        ]
        all_ips = self.ips
        ips = _apply(
            (lambda s: s, lambda s: s.upper(), lambda s: f" {s}"),
            [all_ips[i] for i in w.ip[rows].tolist()],
            _variants(rng, n, self._noise(_NOISE_IP), (0.5, 0.5)),
        )
        all_devices = self.devices
        devices = _apply(
            _DEVICE_FORMATS,
            [all_devices[d] for d in w.device[rows].tolist()],
            _variants(rng, n, self._noise(_NOISE_DEVICE), _DEVICE_WEIGHTS),
        )
        address, city, province, _, country = self._addresses(w.address[rows])
        platform = _apply(
            (lambda s: s, lambda s: s.capitalize(), lambda s: s.upper()),
            [PLATFORMS[p] for p in w.platform[rows].tolist()],
            _variants(rng, n, self._noise(0.03), (0.5, 0.5)),
        )
        ring_rows = w.is_ring[rows]
        null = self._null_rate()
        missing_id = rng.random(n) < null
        id_type_text: list[str | None] = [
            None if m else cols.ID_TYPES[t]
            for t, m in zip(id_type.tolist(), missing_id.tolist(), strict=True)
        ]
        id_numbers: list[str | None] = [
            None if m else v for v, m in zip(id_number, missing_id.tolist(), strict=True)
        ]
        return pd.DataFrame(
            {
                cols.ACCOUNT_ID: account_id,
                cols.PLATFORM: _apply_nulls(rng, platform, null / 4),
                cols.REGISTERED_AT: _timestamps(registered, rng.random(n) < null / 4),
                cols.SHOP_NAME: _apply_nulls(
                    rng, self._text_noise(_render_shop_names(rng, ring_rows)), null / 2
                ),
                cols.LEGAL_NAME: _apply_nulls(rng, self._names(person, company), null),
                cols.ID_TYPE: id_type_text,
                cols.ID_NUMBER: id_numbers,
                cols.PHONE: _apply_nulls(rng, self._phones(w.phone[rows]), null),
                cols.EMAIL: _apply_nulls(rng, emails, 2 * null),
                cols.REGISTRATION_IP: _apply_nulls(rng, ips, null),
                cols.DEVICE_ID: _apply_nulls(rng, devices, null, protect=ring_rows),
                cols.COUNTRY: _apply_nulls(rng, country, null / 2),
                cols.PROVINCE: _apply_nulls(rng, province, 1.5 * null),
                cols.CITY: _apply_nulls(rng, city, null),
                cols.ADDRESS: _apply_nulls(rng, address, null),
            }
        )

    def payment_instruments(self, layout: _Layout) -> pd.DataFrame:
        """Payment-instrument rows in output order, malformed copies included."""
        w, rng = self.world, self.rng
        rows = layout.source
        n = len(rows)
        account = w.pay_account[rows]
        instrument = w.pay_instrument[rows]
        kind = self.instrument_kind[instrument]
        kind_list = kind.tolist()
        type_text: list[str] = [cols.INSTRUMENT_TYPES[k] for k in kind_list]
        card_variant = _variants(rng, n, self._noise(_NOISE_CARD), _CARD_WEIGHTS).tolist()
        bank_variant = _variants(
            rng, n, self._noise(_NOISE_BANK_ACCOUNT), _BANK_ACCOUNT_WEIGHTS
        ).tolist()
        all_instruments = self.instruments
        number: list[str | None] = []
        for i, k, cv, bv in zip(
            instrument.tolist(), kind_list, card_variant, bank_variant, strict=True
        ):
            value = all_instruments[i]
            if k == _KIND_CARD:
                number.append(_CARD_FORMATS[cv](value))
            elif k in (_KIND_BANK, _KIND_OTHER):
                number.append(_BANK_ACCOUNT_FORMATS[bv](value))
            else:
                number.append(value if bv == 0 else f" {value}")
        holder_person = self.instrument_person[instrument]
        holder_company = self.instrument_company[instrument]
        holders: list[str | None] = list(
            self._person_names(np.maximum(holder_person, 0), upper_bias=0.25)
        )
        has_company = np.flatnonzero(holder_company >= 0)
        for i, name in zip(
            has_company.tolist(), self._company_names(holder_company[has_company]), strict=True
        ):
            holders[i] = name
        script = np.where(
            rng.random(n) < min(1.0, self._noise(0.6)), rng.integers(1, 4, size=n), 0
        ).tolist()
        bank_names: list[str | None] = []
        for i, (k, b, p, s, hp) in enumerate(
            zip(
                kind_list,
                self.instrument_bank[instrument].tolist(),
                self.instrument_psp[instrument].tolist(),
                script,
                holder_person.tolist(),
                strict=True,
            )
        ):
            if k in (_KIND_CARD, _KIND_BANK):
                bank_names.append((_BANKS[b][0], _BANKS[b][0], _BANKS[b][1], _BANKS[b][2])[s])
            elif k == _KIND_ALIPAY:
                bank_names.append(("支付宝", "Alipay", "支付宝", None)[s])
            elif k == _KIND_WALLET:
                bank_names.append(("微信支付", "WeChat Pay", "微信", None)[s])
            else:
                bank_names.append(_PSPS[p][s % 2])
                if hp < 0:  # a collection account is held by the payment service itself
                    holders[i] = _PSPS[p][(s + 1) % 2]
        added = np.minimum(
            w.registered_at[account] + rng.exponential(30 * _DAY, n).astype(np.int64), _T_END
        )
        account_id: list[str] = self.account_ids[account].tolist()
        for copy, position, kind_name in layout.extras():
            if kind_name == "orphan_account_id":
                account_id[position] = next(self._orphan_ids)
            elif kind_name == "null_instrument_id":
                number[position] = None
            else:
                type_text[position] = ("crypto", "giftcard", "CASH", "")[copy % 4]
        null = self._null_rate()
        return pd.DataFrame(
            {
                cols.ACCOUNT_ID: account_id,
                cols.INSTRUMENT_TYPE: type_text,
                cols.INSTRUMENT_ID: number,
                cols.HOLDER_NAME: _apply_nulls(rng, holders, 2 * null),
                cols.BANK_NAME: _apply_nulls(rng, bank_names, 3 * null),
                cols.ADDED_AT: _timestamps(added, rng.random(n) < null),
            }
        )

    def logistics(self, layout: _Layout) -> pd.DataFrame:
        """Logistics rows in output order, malformed copies included."""
        w, rng = self.world, self.rng
        rows = layout.source
        n = len(rows)
        account = w.log_account[rows]
        role = w.log_role[rows]
        role_text: list[str] = [cols.LOGISTICS_ROLES[r] for r in role.tolist()]
        address, city, province, postcode, country = self._addresses(w.log_address[rows])
        mean_log = np.zeros(len(cols.LOGISTICS_ROLES))
        mean_log[[_ROLE_SHIP_FROM, _ROLE_RETURN, _ROLE_WAREHOUSE, _ROLE_PICKUP]] = (
            4.0,
            2.0,
            4.5,
            3.0,
        )
        shipments = np.floor(rng.lognormal(mean_log[role], 1.2)).astype(np.int64)
        first = np.minimum(
            w.registered_at[account] + rng.exponential(15 * _DAY, n).astype(np.int64), _T_END - _DAY
        )
        last = first + (rng.random(n) * (_T_END - first)).astype(np.int64)
        account_id: list[str] = self.account_ids[account].tolist()
        for copy, position, kind_name in layout.extras():
            if kind_name == "orphan_account_id":
                account_id[position] = next(self._orphan_ids)
            elif kind_name == "invalid_role":
                role_text[position] = ("billing", "home", "RETURNS", "")[copy % 4]
            else:
                shipments[position] = -int(shipments[position]) - 1
        ring_rows = w.is_ring[account]
        null = self._null_rate()
        return pd.DataFrame(
            {
                cols.ACCOUNT_ID: account_id,
                cols.ROLE: role_text,
                cols.CONTACT_NAME: _apply_nulls(
                    rng, self._person_names(w.log_person[rows]), 2 * null
                ),
                cols.CONTACT_PHONE: _apply_nulls(
                    rng, self._phones(w.log_phone[rows]), null, protect=ring_rows
                ),
                cols.ADDRESS: _apply_nulls(rng, address, null / 2, protect=ring_rows),
                cols.CITY: _apply_nulls(rng, city, 2 * null),
                cols.PROVINCE: _apply_nulls(rng, province, 2 * null),
                cols.POSTCODE: _apply_nulls(rng, postcode, 2 * null),
                cols.COUNTRY: _apply_nulls(rng, country, null),
                cols.SHIPMENT_COUNT: shipments,
                cols.FIRST_USED_AT: _timestamps(first, rng.random(n) < null),
                cols.LAST_USED_AT: _timestamps(last, rng.random(n) < null),
            }
        )

    def draw_signals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Enforcement signals (account, type, count): frequent on rings, rare elsewhere."""
        w, rng = self.world, self.rng
        n = w.n_accounts
        rows_per_account = np.where(
            w.is_ring,
            (rng.random(n) < 0.55) * rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1]),
            (rng.random(n) < 0.06).astype(np.int64),
        )
        account = np.repeat(np.arange(n), rows_per_account)
        ring = w.is_ring[account]
        k = len(account)
        n_types = len(cols.SIGNAL_TYPES)
        signal_type = np.where(
            ring,
            rng.choice(n_types, size=k, p=[_SIGNAL_P_RING[t] for t in cols.SIGNAL_TYPES]),
            rng.choice(n_types, size=k, p=[_SIGNAL_P_HONEST[t] for t in cols.SIGNAL_TYPES]),
        )
        count = np.where(ring, rng.geometric(0.3, size=k), rng.geometric(0.6, size=k))
        return account, signal_type, count.astype(np.int64)

    def enforcement_signals(
        self, layout: _Layout, account: np.ndarray, signal_type: np.ndarray, count: np.ndarray
    ) -> pd.DataFrame:
        """Signal rows in output order, malformed copies included."""
        w, rng = self.world, self.rng
        rows = layout.source
        account = account[rows]
        n = len(rows)
        opened = w.registered_at[account]
        observed = opened + (rng.random(n) * (_T_END - opened)).astype(np.int64)
        account_id: list[str] = self.account_ids[account].tolist()
        type_text: list[str] = [cols.SIGNAL_TYPES[t] for t in signal_type[rows].tolist()]
        count = count[rows]
        for copy, position, kind_name in layout.extras():
            if kind_name == "orphan_account_id":
                account_id[position] = next(self._orphan_ids)
            elif kind_name == "negative_signal_count":
                count[position] = -int(count[position])
            else:
                type_text[position] = ("fraud", "spam", "Complaint", "")[copy % 4]
        return pd.DataFrame(
            {
                cols.ACCOUNT_ID: account_id,
                cols.SIGNAL_TYPE: type_text,
                cols.SIGNAL_COUNT: count,
                cols.OBSERVED_AT: _timestamps(observed, rng.random(n) < self._null_rate()),
            }
        )

    def truth(self) -> pd.DataFrame:
        """account_id -> entity_id for every generated account, sorted by account_id."""
        w = self.world
        numbers = _stage_rng(self.params.seed, 5).permutation(w.n_entities)
        entity_ids = np.asarray([f"T{v:06d}" for v in numbers.tolist()], dtype=object)
        order = np.argsort(self.account_ids.astype(str), kind="stable")
        return pd.DataFrame(
            {
                cols.ACCOUNT_ID: self.account_ids[order],
                cols.ENTITY_ID: entity_ids[w.entity[order]],
            }
        )

    def entities(self) -> pd.DataFrame:
        """One row per true entity: kind, household and number of accounts (for evaluation)."""
        w = self.world
        numbers = _stage_rng(self.params.seed, 5).permutation(w.n_entities)
        household = [f"H{h:06d}" if h >= 0 else None for h in w.household.tolist()]
        frame = pd.DataFrame(
            {
                cols.ENTITY_ID: [f"T{v:06d}" for v in numbers.tolist()],
                "kind": [_ENTITY_KINDS[k] for k in w.entity_kind.tolist()],
                "household_id": household,
                cols.ACCOUNT_COUNT: np.bincount(w.entity, minlength=w.n_entities).astype(np.int64),
            }
        )
        return frame.sort_values(cols.ENTITY_ID, kind="stable").reset_index(drop=True)

    def links(self) -> pd.DataFrame:
        """One row per pair of rings sharing an upstream supplier's value (for evaluation)."""
        w = self.world
        numbers = _stage_rng(self.params.seed, 5).permutation(w.n_entities)
        entity_ids = np.asarray([f"T{v:06d}" for v in numbers.tolist()], dtype=object)
        left = entity_ids[w.supplier_links[:, 0]]
        right = entity_ids[w.supplier_links[:, 1]]
        kind = w.supplier_links[:, 2]
        frame = pd.DataFrame(
            {
                "entity_id_l": np.where(left < right, left, right),
                "entity_id_r": np.where(left < right, right, left),
                "link_type": [_SUPPLIER_LINK_TYPES[k] for k in kind.tolist()],
                "supplier_id": [
                    f"{'W' if k == _SUPPLIER_WAREHOUSE else 'P'}{s:04d}"
                    for k, s in zip(kind.tolist(), w.supplier_links[:, 3].tolist(), strict=True)
                ],
            }
        )
        return frame.sort_values(["entity_id_l", "entity_id_r", "supplier_id"]).reset_index(
            drop=True
        )


_ENTITY_KINDS = ("single", "operator", "ring")


def _generate_parts(
    params: GeneratorParams,
) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame | None]]:
    """Yield (name, frame, malformed rows of that dataset) for the datasets one at a time (so
    that a writer can drop each after writing), then the malformed-row list, the truth and
    the entity list."""
    params.validate()
    started = time.perf_counter()
    world = _build_world(params)
    logger.info("built the population in %.1f s", time.perf_counter() - started)
    renderer = _Renderer(world, params)
    rng = _stage_rng(params.seed, 4)
    rate = params.malformed_rate
    manifests = []

    layout = _plan_layout(rng, cols.ACCOUNTS, world.n_accounts, rate)
    frame = renderer.accounts(layout)
    manifests.append(_manifest(cols.ACCOUNTS, layout, frame))
    logger.info("rendered %s: %d rows", cols.ACCOUNTS, len(frame))
    yield cols.ACCOUNTS, frame, manifests[-1]
    del frame

    layout = _plan_layout(rng, cols.PAYMENT_INSTRUMENTS, len(world.pay_account), rate)
    frame = renderer.payment_instruments(layout)
    manifests.append(_manifest(cols.PAYMENT_INSTRUMENTS, layout, frame))
    logger.info("rendered %s: %d rows", cols.PAYMENT_INSTRUMENTS, len(frame))
    yield cols.PAYMENT_INSTRUMENTS, frame, manifests[-1]
    del frame

    layout = _plan_layout(rng, cols.LOGISTICS, len(world.log_account), rate)
    frame = renderer.logistics(layout)
    manifests.append(_manifest(cols.LOGISTICS, layout, frame))
    logger.info("rendered %s: %d rows", cols.LOGISTICS, len(frame))
    yield cols.LOGISTICS, frame, manifests[-1]
    del frame

    account, signal_type, count = renderer.draw_signals()
    layout = _plan_layout(rng, cols.ENFORCEMENT_SIGNALS, len(account), rate)
    frame = renderer.enforcement_signals(layout, account, signal_type, count)
    manifests.append(_manifest(cols.ENFORCEMENT_SIGNALS, layout, frame))
    logger.info("rendered %s: %d rows", cols.ENFORCEMENT_SIGNALS, len(frame))
    yield cols.ENFORCEMENT_SIGNALS, frame, manifests[-1]
    del frame

    yield "malformed", pd.concat(manifests, ignore_index=True), None
    yield "truth", renderer.truth(), None
    yield "entities", renderer.entities(), None
    yield "links", renderer.links(), None
    logger.info(
        "generated %d accounts of %d entities in %.1f s",
        world.n_accounts,
        world.n_entities,
        time.perf_counter() - started,
    )


def generate(
    *,
    accounts: int,
    seed: int,
    malformed_rate: float = 0.002,
    ring_share: float = 0.25,
    hub_scale: float = 1.0,
    noise: float = 1.0,
    supplier_share: float = 0.0,
) -> SyntheticData:
    """Generate the four contract datasets with ground truth, in memory.

    `accounts` valid accounts are generated (plus the malformed extra rows); `ring_share` is
    the fraction of accounts that belong to counterfeit rings; `hub_scale` scales how many
    accounts use hub values (0: none); `noise` scales formatting noise and nulls (0: every
    value canonical); `malformed_rate` is the fraction of malformed extra rows per dataset;
    `supplier_share` is the fraction of rings that buy from an upstream supplier shared with
    1-3 other rings (0: none).
    The same arguments always give the same data. Raises `ConfigError` for knobs out of range.

    Example:

        >>> data = generate(accounts=500, seed=1, malformed_rate=0.0)
        >>> truth_ids = data.truth["account_id"]
        >>> len(data.accounts), bool(truth_ids.isin(data.accounts["account_id"]).all())
        (500, True)
    """
    params = GeneratorParams(
        accounts, seed, malformed_rate, ring_share, hub_scale, noise, supplier_share
    )
    return SyntheticData(**{name: frame for name, frame, _ in _generate_parts(params)})


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _csv_table(frame: pd.DataFrame, schema: pa.Schema, bad_rows: dict[str, np.ndarray]) -> pa.Table:
    """The frame as an Arrow table for CSV: ISO-8601 timestamps, the listed ones unparseable."""
    arrays = []
    for f in schema:
        column = frame[f.name]
        if pa.types.is_timestamp(f.type):
            values = column.dt.tz_convert(None).to_numpy().astype("datetime64[s]")
            text = np.datetime_as_string(values, unit="s", timezone="UTC").astype(object)
            text[np.isnat(values)] = None
            for k, r in enumerate(bad_rows.get(f.name, np.zeros(0, np.int64)).tolist()):
                text[r] = _MALFORMED_TIMESTAMPS[k % len(_MALFORMED_TIMESTAMPS)]
            arrays.append(pa.array(text, type=pa.string()))
        else:
            arrays.append(pa.array(column.to_numpy(), type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, names=schema.names)


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="needed"))


def _sidecar_path(truth_path: Path, what: str) -> Path:
    return truth_path.with_name(f"{truth_path.stem}_{what}{truth_path.suffix}")


def _check_paths(in_dir: Path, fmt: str, truth_path: Path) -> None:
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"format must be 'parquet' or 'csv', got {fmt!r}")
    if truth_path.resolve().is_relative_to(in_dir.resolve()):
        raise ConfigError(
            f"truth file {truth_path} is inside the input directory {in_dir}; write it elsewhere"
        )


def _write_part(
    name: str,
    frame: pd.DataFrame,
    in_dir: Path,
    fmt: str,
    truth_path: Path,
    malformed: pd.DataFrame | None,
) -> None:
    """Write one part: a dataset into `in_dir`, or truth / sidecars next to `truth_path`."""
    if name in cols.INPUT_DATASETS:
        schema = SCHEMAS[name]
        if fmt == "parquet":
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        else:
            listed = (
                malformed[(malformed["dataset"] == name) & malformed["csv_only"]]
                if malformed is not None
                else _empty_malformed()
            )
            bad = {c: g["row"].to_numpy() for c, g in listed.groupby("column", sort=True)}
            table = _csv_table(frame, schema, bad)
        path = in_dir / f"{name}.{fmt}"
        other = in_dir / f"{name}.{'csv' if fmt == 'parquet' else 'parquet'}"
        if other.exists():
            logger.warning(
                "%s also holds %s from an earlier run; readers may find both", in_dir, other.name
            )
    else:
        # The truth and its sidecars take the truth file's format (by its suffix).
        fmt = "csv" if truth_path.suffix.lower() == ".csv" else "parquet"
        if name == "truth":
            table = pa.Table.from_pandas(frame, schema=TRUTH_SCHEMA, preserve_index=False)
            path = truth_path
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            path = _sidecar_path(truth_path, name)
    _write_table(table, path, fmt)
    logger.info("wrote %s (%d rows)", path, table.num_rows)


def write(data: SyntheticData, in_dir: str | Path, *, fmt: str, truth_path: str | Path) -> None:
    """Write the four datasets into `in_dir` as NAME.parquet or NAME.csv, and the truth.

    The truth goes to `truth_path` (never inside `in_dir`; CSV if it ends in `.csv`, else
    parquet); next to it go the malformed-row list `<truth stem>_malformed.<ext>`, the
    entity list `<truth stem>_entities.<ext>` and the list of related rings
    `<truth stem>_links.<ext>`.
    In CSV, timestamps are ISO-8601 (`2024-05-01T08:30:00Z`) and the rows listed with
    `csv_only` get an unparseable timestamp instead. Raises `ConfigError` for a bad format or
    a truth path inside `in_dir`.

    Example:

        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> write(generate(accounts=200, seed=3), root / "in", fmt="csv",
        ...       truth_path=root / "truth.csv")
        >>> sorted(p.name for p in (root / "in").iterdir())[:2]
        ['accounts.csv', 'enforcement_signals.csv']
    """
    in_dir, truth_path = Path(in_dir), Path(truth_path)
    _check_paths(in_dir, fmt, truth_path)
    in_dir.mkdir(parents=True, exist_ok=True)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    for name in (*cols.INPUT_DATASETS, "truth", "malformed", "entities", "links"):
        _write_part(name, getattr(data, name), in_dir, fmt, truth_path, data.malformed)


def _write_streaming(
    params: GeneratorParams, in_dir: Path, fmt: str, truth_path: Path
) -> dict[str, pd.DataFrame]:
    """Generate and write part by part, holding one dataset in memory at a time.

    Gives the same files as `write(generate(...), ...)`; returns the truth, malformed-row and
    entity lists (small) for the summary.
    """
    _check_paths(in_dir, fmt, truth_path)
    in_dir.mkdir(parents=True, exist_ok=True)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    kept: dict[str, pd.DataFrame] = {}
    for name, frame, listed in _generate_parts(params):
        _write_part(name, frame, in_dir, fmt, truth_path, listed)
        if name not in cols.INPUT_DATASETS:
            kept[name] = frame
        del frame
    return kept


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.generate_synthetic",
        description="Generate synthetic seller-account data (data contract) with ground truth.",
    )
    parser.add_argument("--output", required=True, help="IN_DIR to write the datasets into")
    parser.add_argument("--accounts", required=True, type=int, help="number of valid accounts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", dest="fmt", choices=("parquet", "csv"), default="parquet")
    parser.add_argument(
        "--truth", default=None, help="truth file (default IN_DIR/../truth.parquet or .csv)"
    )
    parser.add_argument("--malformed-rate", type=float, default=0.002)
    parser.add_argument("--ring-share", type=float, default=0.25)
    parser.add_argument("--hub-scale", type=float, default=1.0)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument(
        "--supplier-share",
        type=float,
        default=0.0,
        help="fraction of rings sharing an upstream supplier with 1-3 other rings (0: none)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, generate, write; return the exit status (0, or 2 for bad arguments)."""
    args = _parse_args(argv)
    configure_logging()
    in_dir = Path(args.output)
    truth_path = Path(args.truth) if args.truth else in_dir.resolve().parent / f"truth.{args.fmt}"
    params = GeneratorParams(
        args.accounts,
        args.seed,
        args.malformed_rate,
        args.ring_share,
        args.hub_scale,
        args.noise,
        args.supplier_share,
    )
    started = time.perf_counter()
    try:
        params.validate()
        kept = _write_streaming(params, in_dir, args.fmt, truth_path)
    except ConfigError as error:
        logger.error("%s", error)
        return 2
    entities = kept["entities"]
    kinds = entities.groupby("kind").size()
    logger.info(
        "done in %.1f s: %d accounts, %d entities (%d single, %d operators, %d rings; largest "
        "%d accounts), %d malformed rows -> %s, truth %s",
        time.perf_counter() - started,
        len(kept["truth"]),
        len(entities),
        kinds.get("single", 0),
        kinds.get("operator", 0),
        kinds.get("ring", 0),
        int(entities[cols.ACCOUNT_COUNT].max()),
        len(kept["malformed"]),
        in_dir,
        truth_path,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
