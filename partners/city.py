"""The simulated city: calibration targets, people, training offer and evaluation organisations."""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

from schemas.identity import credit_code_check_char, resident_id_check_char
from schemas.partners import Partner, PartnerRegistry
from schemas.reference import divisions, occupations

T = TypeVar("T")

# Certificates issued for the new occupations in Hangzhou (Zhiye 2023 no. 21): 7,285 in total.
PUBLISHED_CERTIFICATES_TOTAL = 7285
PUBLISHED_CERTIFICATES: dict[str, int] = {
    "4-01-06-02": 3095,  # internet marketing specialist
    "4-14-01-03": 2074,  # health care giver
    "6-25-04-09": 406,  # IoT installation and commissioning technician
    "4-04-04-04": 228,  # information security tester
    "4-04-05-05": 207,  # AI trainer
    "4-04-04-06": 173,  # cryptography application technician
}


def occupation_targets() -> dict[str, float]:
    """Share of certificates each occupation should receive, summing to one.

    The unnamed remainder is spread evenly over the other occupations in the reference list.
    """
    others = [code for code in occupations() if code not in PUBLISHED_CERTIFICATES]
    remainder = PUBLISHED_CERTIFICATES_TOTAL - sum(PUBLISHED_CERTIFICATES.values())
    counts: dict[str, float] = dict(PUBLISHED_CERTIFICATES)
    for code in others:
        counts[code] = remainder / len(others)
    return {code: count / PUBLISHED_CERTIFICATES_TOTAL for code, count in counts.items()}


# No level breakdown is published; new-occupation evaluations are mostly at the entry levels.
LEVEL_TARGETS: dict[int, float] = {5: 0.42, 4: 0.30, 3: 0.18, 2: 0.07, 1: 0.03}

RETIRED_DIVISION_SHARE = 0.12

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
)
GIVEN_NAME_CHARACTERS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文辉力鹏飞玲红梅燕鑫宇浩然子轩梓涵欣怡"
    "佳琪思远嘉怡俊杰晨曦雨婷志强海燕晓东立新春花秋菊冬梅振华永生家豪婉清若曦一鸣天佑诗雨博文锦程"
)
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "155", "156", "157", "158", "159", "166", "173", "176", "177", "180", "181", "182",
    "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

PARTNER_COURSE_MODES = {
    "zjgj": ("online", "offline", "blended"),
    "xgxy": ("online", "blended"),
    "tl_bureau": ("offline", "blended"),
}

# Course catalogue of the city's training platform (浙派工匠): 267 courses from 630 institutions.
PLATFORM_COURSES = 267
PLATFORM_INSTITUTIONS = 630


# Which occupations each partner mostly trains or evaluates for (from the partners' profiles).
SPECIALTIES: dict[str, tuple[str, ...]] = {
    "xgxy": ("4-02-07-08", "4-10-08-01"),
    "hzjsxy_nev": ("6-31-01-03", "6-25-04-09"),
    "hzjsxy_dt": ("4-01-06-01", "4-07-02-05", "4-04-05-05", "4-04-04-04"),
    "bj_bureau": ("4-10-08-01", "4-04-04-05"),
    "xh_bureau": ("4-01-06-02", "4-13-01-05"),
    "tl_bureau": ("4-01-06-02", "4-01-06-01", "4-07-02-05"),
    "eval01": ("4-04-05-05", "4-04-04-05"),
    "eval02": ("4-01-06-02",),
    "eval03": ("4-14-01-03", "4-10-01-05"),
    "eval04": ("6-25-04-09",),
    "eval05": ("4-04-04-04",),
    "eval06": ("4-04-05-05",),
    "eval07": ("4-04-04-06",),
    "eval08": ("6-31-01-03", "6-25-04-09"),
    "eval09": ("4-07-02-05", "4-01-06-01"),
    "eval10": ("4-10-08-01", "4-02-07-08"),
    "eval11": ("4-10-01-06",),
    "eval12": ("4-01-06-01", "4-01-06-02", "4-13-01-05"),
    "eval13": ("4-01-06-02",),
    "eval14": ("6-31-01-03", "4-14-01-03"),
    "eval15": ("4-04-05-06", "4-04-04-05"),
    "eval16": ("4-13-01-05", "4-10-01-06"),
}
# How much of the training each kind of partner carries; the platform dominates.
ROLE_WEIGHTS = {"training_platform": 4.0, "technician_college": 1.0, "district_bureau": 0.6}
SPECIALTY_BOOST = 6.0
OFF_SPECIALTY = 0.15
# The courier programme trains couriers and riders only.
SPECIALISTS_ONLY = frozenset({"xgxy"})
EVALUATION_SPECIALTY_WEIGHT = 1.0
EVALUATION_GENERALIST_WEIGHT = 0.02


@dataclass(frozen=True, slots=True)
class Person:
    resident_id: str
    name: str
    phone: str
    district_code: str


@dataclass(frozen=True, slots=True)
class Institution:
    credit_code: str
    name: str
    district_code: str


@dataclass(frozen=True, slots=True)
class Course:
    course_id: str
    occupation_code: str
    hours: int
    mode: str
    institution: Institution


@dataclass(frozen=True, slots=True)
class EvaluationOrg:
    partner_id: str
    name: str
    credit_code: str
    certificate_org_code: str
    site_index: int
    district_code: str


def credit_code(rng: random.Random, kind: str, region: str) -> str:
    """A valid unified social credit code for an organisation of `kind` ("12", "52", "91")."""
    body = "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(9))
    first17 = f"{kind}{region}{body}"
    return first17 + credit_code_check_char(first17)


class PeopleFactory:
    """Draws residents with valid ID numbers, real birth dates, names and mobile numbers."""

    def __init__(self, rng: random.Random, on_day: date) -> None:
        self._rng = rng
        # Counties and districts only: the city's own code appears in no resident ID number.
        self._current = tuple(
            d.code for d in divisions().values() if not d.retired and not d.code.endswith("00")
        )
        # Merged or renamed in 2014-2021, yet still printed inside older ID numbers.
        self._retired = tuple(d.code for d in divisions().values() if d.retired)
        self._issued: set[str] = set()
        # Trainees are of working age on the simulated day.
        self._first_birth = date(on_day.year - 60, 1, 1).toordinal()
        self._last_birth = date(on_day.year - 18, on_day.month, 1).toordinal()

    def person(self) -> Person:
        rng = self._rng
        # People move: the address code in the ID number is where the number was issued.
        district = rng.choice(self._current)
        if rng.random() < RETIRED_DIVISION_SHARE:
            address = rng.choice(self._retired)
        elif rng.random() < 0.7:
            address = district
        else:
            address = rng.choice(self._current)
        # One number, one person: a repeated number would fake a double claim.
        while True:
            born = date.fromordinal(rng.randint(self._first_birth, self._last_birth))
            first17 = f"{address}{born:%Y%m%d}{rng.randint(1, 999):03d}"
            if first17 not in self._issued:
                self._issued.add(first17)
                break
        given = rng.choice(GIVEN_NAME_CHARACTERS)
        if rng.random() < 0.7:
            given += rng.choice(GIVEN_NAME_CHARACTERS)
        return Person(
            resident_id=first17 + resident_id_check_char(first17),
            name=rng.choice(SURNAMES) + given,
            phone=rng.choice(MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}",
            district_code=district,
        )


class WeightedChoice(Generic[T]):
    """Draws from fixed weights with one random number and a binary search."""

    def __init__(self, options: list[tuple[T, float]]) -> None:
        self._items = [item for item, _ in options]
        self._cumulative = list(itertools.accumulate(weight for _, weight in options))

    def draw(self, rng: random.Random) -> T:
        point = rng.random() * self._cumulative[-1]
        return self._items[bisect.bisect_right(self._cumulative, point)]


class City:
    """The partners of the registry with the courses and evaluation offer they run."""

    def __init__(self, registry: PartnerRegistry, rng: random.Random) -> None:
        targets = occupation_targets()
        self.occupations = WeightedChoice(list(targets.items()))
        self.levels = WeightedChoice(list(LEVEL_TARGETS.items()))
        self.work_types = {code: occupations()[code].work_types for code in targets}
        trainers = [
            p
            for p in registry
            if "enrollment.created" in p.allowed_types and p.role in ROLE_WEIGHTS
        ]
        evaluators = [p for p in registry if "certificate.issued" in p.allowed_types]
        if not trainers or not evaluators:
            raise ValueError("the registry needs training partners and evaluation organisations")
        self.training_partners = [p.partner_id for p in trainers]
        self.trainer_for = {
            code: WeightedChoice(
                [
                    (p.partner_id, ROLE_WEIGHTS[p.role] * _affinity(p.partner_id, code))
                    for p in trainers
                ]
            )
            for code in targets
        }
        self.courses = {p.partner_id: _catalogue(rng, p, targets) for p in trainers}
        self.evaluation_orgs = {
            p.partner_id: EvaluationOrg(
                partner_id=p.partner_id,
                name=p.name[:200],
                credit_code=p.credit_code or credit_code(rng, "91", p.district_code or "330100"),
                certificate_org_code=f"{3300 + index:04d}",
                site_index=index,
                district_code=p.district_code or "330100",
            )
            for index, p in enumerate(evaluators, start=1)
        }
        self.evaluator_for = {
            code: WeightedChoice(
                [
                    (
                        p.partner_id,
                        EVALUATION_SPECIALTY_WEIGHT
                        if code in SPECIALTIES.get(p.partner_id, ())
                        else EVALUATION_GENERALIST_WEIGHT,
                    )
                    for p in evaluators
                ]
            )
            for code in targets
        }


def _affinity(partner_id: str, occupation_code: str) -> float:
    specialties = SPECIALTIES.get(partner_id)
    if specialties is None:
        return 1.0
    if occupation_code in specialties:
        return SPECIALTY_BOOST
    return 0.0 if partner_id in SPECIALISTS_ONLY else OFF_SPECIALTY


def _catalogue(
    rng: random.Random, partner: Partner, targets: dict[str, float]
) -> dict[str, list[Course]]:
    """Courses by occupation; the platform lists 267 courses from 630 institutions."""
    district = partner.district_code or "330100"
    if partner.partner_id == "zjgj":
        districts = [d.code for d in divisions().values() if not d.retired]
        institutions = [
            Institution(
                credit_code(rng, "52" if i % 3 else "91", district_code),
                f"杭州{rng.choice(SURNAMES)}{rng.choice(GIVEN_NAME_CHARACTERS)}职业培训学校",
                district_code,
            )
            for i in range(PLATFORM_INSTITUTIONS)
            for district_code in [rng.choice(districts)]
        ]
        per_occupation = {
            code: max(1, round(share * PLATFORM_COURSES)) for code, share in targets.items()
        }
    else:
        own_code = partner.credit_code or credit_code(rng, "12", district)
        institutions = [Institution(own_code, partner.name[:200], district)]
        per_occupation = dict.fromkeys(targets, 2)
    prefix = partner.partner_id.upper().replace("_", "")
    mode = PARTNER_COURSE_MODES.get(partner.partner_id, ("offline",))
    serial = itertools.count(1)
    return {
        code: [
            Course(
                course_id=f"{prefix}-C{next(serial):04d}",
                occupation_code=code,
                hours=rng.choice((16, 24, 32, 40, 48, 64, 80)),
                mode=rng.choice(mode),
                institution=rng.choice(institutions),
            )
            for _ in range(count)
        ]
        for code, count in per_occupation.items()
    }
