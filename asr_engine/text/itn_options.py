"""Conventions the ITN can follow where the public test suites disagree with each other."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_OPTIONS", "WETEXT_ZH_OPTIONS", "ItnOptions"]


@dataclass(frozen=True, kw_only=True)
class ItnOptions:
    """Written-form conventions; the defaults are this project's house style.

    zh_date_style: "chinese" writes 2025年3月5日 (cn2an, NeMo); "slash" writes
        2025/03/05 the way WeTextProcessing does.
    zh_ampm_style: "prefix" keeps 上午/下午 in front (上午8:30); "suffix" writes
        8:30a.m. like WeTextProcessing.
    zh_single_digits: convert a lone 一..九 when a measure word follows
        (三个 -> 3个); WeTextProcessing's enable_0_to_9.
    zh_standalone_numbers: convert multi-character numbers with no measure word
        after them (五十五 -> 55); WeTextProcessing's enable_standalone_number.
    """

    zh_date_style: Literal["chinese", "slash"] = "chinese"
    zh_ampm_style: Literal["prefix", "suffix"] = "prefix"
    zh_single_digits: bool = True
    zh_standalone_numbers: bool = True


DEFAULT_OPTIONS = ItnOptions()
WETEXT_ZH_OPTIONS = ItnOptions(zh_date_style="slash", zh_ampm_style="suffix")
