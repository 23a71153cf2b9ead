"""Pairs built from real recorded model answers (RouterBench, via RouterDC).

Every pair below was chosen and labelled by reading the two responses and the
question's options by eye.  `equivalent` is NOT computed by a regex: it is the
hand label written in each tuple.  build_pairs.py prints a regex cross-check
so disagreements between the hand label and a naive letter extractor are
visible (they are the interesting cases).

Tuple: (sample_id, model_a, model_b, equivalent, note-or-None)
"""

GPT35 = "gpt-3.5-turbo-1106"
GPT4 = "gpt-4-1106-preview"
CI = "claude-instant-v1"
C1 = "claude-v1"
C2 = "claude-v2"
LLAMA = "meta/llama-2-70b-chat"
CODELLAMA = "meta/code-llama-instruct-34b-chat"
MIXTRAL = "mistralai/mixtral-8x7b-chat"
MISTRAL = "mistralai/mistral-7b-chat"
YI = "zero-one-ai/Yi-34B-Chat"
WIZ = "WizardLM/WizardLM-13B-V1.2"

TRUNC = "response truncated by the recorded generation limit; "

ARC = [
    ("arc-challenge.test.177", GPT35, C1, True, None),  # 'D (' vs 'D'
    ("arc-challenge.test.177", GPT35, CODELLAMA, False, None),  # 'D (' vs 'C'
    ("arc-challenge.test.1155", CI, GPT4, True, None),  # 'D)' vs 'D'
    ("arc-challenge.test.1155", CI, GPT35, False, None),  # 'D)' vs 'B'
    ("arc-challenge.test.877", C2, CI, False, None),  # 'D)' vs 'C'
    ("arc-challenge.test.877", C2, MIXTRAL, True, None),  # 'D)' vs 'D\n'
    ("arc-challenge.val.236", CI, GPT35, False, TRUNC + "'Based on' commits to no option"),
    ("arc-challenge.val.171", MIXTRAL, GPT4, True, "'13' is the text of option B (13), not a letter"),
    ("arc-challenge.val.171", MIXTRAL, GPT35, False, "'13' is the text of option B; C is 1"),
    ("arc-challenge.val.171", MIXTRAL, C1, False, "'13' is the text of option B; A is 28"),
    ("arc-challenge.test.965", CI, GPT4, True, None),  # 'A)' vs 'A'
    ("arc-challenge.test.965", CI, C1, False, None),  # 'A)' vs 'C'
    ("arc-challenge.test.614", CI, C2, False, None),  # 'A)' vs 'B'
    ("arc-challenge.test.96", C2, GPT4, False, TRUNC + "'Sediment' restates the topic and picks no option"),
    ("arc-challenge.test.153", MISTRAL, C1, False, "'G' is not one of the options A-D"),
    ("arc-challenge.test.550", C2, C1, False, TRUNC + "'Transitional' restates the question stem"),
    ("arc-challenge.test.228", CI, C2, False, TRUNC + "'Based on' commits to no option"),
    ("arc-challenge.test.228", C2, LLAMA, True, None),  # 'C)' vs 'C\n'
    (
        "arc-challenge.val.184",
        C2,
        GPT4,
        False,
        TRUNC
        + "'A questioning' restates the question stem ('A questioning mind...'); the 'A' is an article, not option A",
    ),
    ("arc-challenge.test.55", CI, C1, True, "'A chart' = option A) a chart (letter and option text agree)"),
    ("arc-challenge.test.55", CI, GPT35, False, "'A chart' = option A) a chart"),
    ("arc-challenge.test.349", CI, GPT35, True, "'A first' = start of option A) first-aid kit"),
    ("arc-challenge.test.349", CI, GPT4, False, "'A first' = start of option A) first-aid kit"),
    (
        "arc-challenge.test.735",
        C2,
        GPT4,
        False,
        TRUNC + "'A hypothesis' restates the question stem; the 'A' is an article, not option A",
    ),
    ("arc-challenge.test.1127", C2, GPT4, True, None),  # 'A.' vs 'A'
    ("arc-challenge.test.145", C2, GPT4, False, TRUNC + "'Selenium has' commits to no option"),
    ("arc-challenge.test.273", C2, GPT4, False, TRUNC + "'* Jeremy' starts working and commits to no option"),
    ("arc-challenge.test.42", C2, GPT4, False, TRUNC + "'Okay,' commits to no option"),
    ("arc-challenge.test.946", C2, GPT4, False, TRUNC + "'I apologize' is a refusal/non-answer"),
    (
        "arc-challenge.test.176",
        GPT4,
        C1,
        False,
        TRUNC + "'You have' is a non-answer (the passage is missing from the prompt)",
    ),
    (
        "arc-challenge.test.307",
        C2,
        GPT4,
        False,
        TRUNC + "'There is' could begin option A or C; commits to neither",
    ),
    ("arc-challenge.test.345", CI, C2, False, None),  # 'A)' vs 'C)'
    ("arc-challenge.test.345", CI, GPT4, True, None),  # 'A)' vs 'A'
    ("arc-challenge.test.902", CI, GPT4, True, None),  # 'B)' vs 'B'
    ("arc-challenge.test.902", CI, C1, False, None),  # 'B)' vs 'C'
    ("arc-challenge.test.167", C2, GPT4, False, None),  # 'B)' vs 'A'
    ("arc-challenge.test.749", CI, GPT4, False, None),  # 'A)' vs 'C'
    (
        "arc-challenge.test.663",
        C2,
        GPT4,
        False,
        TRUNC + "'I do' (claude-v2's usual 'I do not ...' refusal) is a non-answer",
    ),
    ("arc-challenge.test.1100", GPT35, C2, True, None),  # 'A)' vs 'A'
    ("arc-challenge.val.150", CI, MISTRAL, False, None),  # 'B)' vs 'C\n'
    ("arc-challenge.test.58", C2, MISTRAL, False, None),  # 'B)' vs 'A\n'
    ("arc-challenge.test.19", C2, GPT4, True, None),  # 'C)' vs 'C'
    ("arc-challenge.test.986", C2, CODELLAMA, True, None),  # 'D)' vs 'D\n'
    ("arc-challenge.test.163", CI, C2, True, None),  # 'C)' vs 'C)'
    ("arc-challenge.val.14", C2, MISTRAL, True, None),  # 'D)' vs 'D\n'
    ("arc-challenge.test.547", CI, MIXTRAL, True, None),  # 'D)' vs 'D\n'
    ("arc-challenge.val.2", C2, YI, True, None),  # 'D)' vs 'D'
    ("arc-challenge.test.1057", C2, WIZ, False, None),  # 'D)' vs 'A\n'
]

NAME = "mixtral answered with (the start of) an option's text instead of its letter; "

WINO = [
    ("winogrande.dev.25", MIXTRAL, C1, True, NAME + "'Rachel' = option B"),
    ("winogrande.dev.25", MIXTRAL, YI, False, NAME + "'Rachel' = option B"),
    ("winogrande.dev.374", MIXTRAL, GPT35, True, NAME + "'Erin' = option B"),
    ("winogrande.dev.374", MIXTRAL, GPT4, False, NAME + "'Erin' = option B"),
    (
        "winogrande.dev.426",
        MIXTRAL,
        GPT4,
        True,
        NAME + "truncated 'Jeff' uniquely identifies option B) Jeffrey",
    ),
    (
        "winogrande.dev.426",
        MIXTRAL,
        CI,
        False,
        NAME + "truncated 'Jeff' uniquely identifies option B) Jeffrey",
    ),
    (
        "winogrande.dev.1170",
        CI,
        GPT4,
        False,
        "'Aria' is a name from the sentence, not one of the options (paint / wood)",
    ),
    (
        "winogrande.dev.537",
        MIXTRAL,
        GPT4,
        True,
        NAME + "truncated 'Natal' uniquely identifies option B) Natalie",
    ),
    (
        "winogrande.dev.537",
        MIXTRAL,
        GPT35,
        False,
        NAME + "truncated 'Natal' uniquely identifies option B) Natalie",
    ),
    ("winogrande.dev.788", MIXTRAL, C1, True, NAME + "'Maria' = option B"),
    ("winogrande.dev.788", MIXTRAL, CI, False, NAME + "'Maria' = option B"),
    (
        "winogrande.dev.153",
        MIXTRAL,
        GPT4,
        False,
        "'K' is not an option letter (probably the start of 'Kayla' = B, but it does not commit to an answer a grader would accept)",
    ),
    ("winogrande.dev.808", MIXTRAL, C1, True, NAME + "truncated 'Cra' uniquely identifies option B) Craig"),
    ("winogrande.dev.198", MIXTRAL, C1, True, NAME + "'Eric' = option B"),
    ("winogrande.dev.198", MIXTRAL, GPT4, False, NAME + "'Eric' = option B"),
    ("winogrande.dev.1072", MIXTRAL, GPT4, True, NAME + "'Zipper' = option B) zipper"),
    ("winogrande.dev.1072", MIXTRAL, CI, False, NAME + "'Zipper' = option B) zipper"),
    (
        "winogrande.dev.250",
        MIXTRAL,
        GPT4,
        False,
        "'J' is not an option letter (probably the start of 'Jason' = B, but it does not commit to an answer a grader would accept)",
    ),
    (
        "winogrande.dev.1211",
        MIXTRAL,
        GPT4,
        True,
        NAME + "truncated 'Cyn' uniquely identifies option B) Cynthia",
    ),
    ("winogrande.dev.76", MIXTRAL, C1, True, NAME + "'Mary' = option B"),
    ("winogrande.dev.76", MIXTRAL, GPT4, False, NAME + "'Mary' = option B"),
    ("winogrande.dev.743", MIXTRAL, C1, True, NAME + "'Randy' = option B"),
    ("winogrande.dev.743", MIXTRAL, GPT4, False, NAME + "'Randy' = option B"),
    ("winogrande.dev.330", MIXTRAL, GPT35, True, NAME + "'Nelson' = option B"),
    ("winogrande.dev.330", MIXTRAL, GPT4, False, NAME + "'Nelson' = option B"),
    (
        "winogrande.dev.237",
        MIXTRAL,
        GPT4,
        True,
        NAME + "truncated 'Vict' uniquely identifies option B) Victoria",
    ),
    ("winogrande.dev.37", MIXTRAL, GPT35, True, NAME + "'Tanya' = option B"),
    ("winogrande.dev.37", MIXTRAL, MISTRAL, False, NAME + "'Tanya' = option B"),
    ("winogrande.dev.1239", MIXTRAL, C1, True, NAME + "'Rachel' = option B"),
    ("winogrande.dev.1239", MIXTRAL, GPT4, False, NAME + "'Rachel' = option B"),
    (
        "winogrande.dev.756",
        MIXTRAL,
        GPT4,
        True,
        NAME + "truncated 'Rober' uniquely identifies option B) Robert",
    ),
    (
        "winogrande.dev.756",
        MIXTRAL,
        GPT35,
        False,
        NAME + "truncated 'Rober' uniquely identifies option B) Robert",
    ),
    (
        "winogrande.dev.949",
        C2,
        C1,
        False,
        TRUNC + "'I do' (claude-v2's usual 'I do not ...' refusal) is a non-answer",
    ),
    ("winogrande.dev.230", C2, GPT4, False, TRUNC + '"I\'m" is a non-answer'),
    ("winogrande.dev.559", C2, GPT4, False, TRUNC + "'Unfortunately,' is a refusal/non-answer"),
    ("winogrande.dev.997", C2, GPT4, False, TRUNC + "'There is' commits to no option"),
    ("winogrande.dev.1206", CI, GPT35, True, None),  # 'A)' vs 'A'
    ("winogrande.dev.728", CI, GPT4, False, None),  # 'A)' vs 'B'
    ("winogrande.dev.705", CI, YI, True, None),  # 'A)' vs 'A'
]
