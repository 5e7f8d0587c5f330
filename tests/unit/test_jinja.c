/* test_jinja.c - wandler's Jinja interpreter (src/text/jinja/): expressions, filters, tests,
 * statements, whitespace control, scoping, undefined values, error messages with line numbers,
 * the limits that stop hostile templates, the value API, and concurrent renders.
 *
 * The table of renderings below was produced by Python's jinja2 3.1 in transformers' chat
 * template environment (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
 * tojson = json.dumps(ensure_ascii=False)) with the context made by make_context(). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "text/jinja/jinja.h"
#include "util/buf.h"

static const struct {
    const char *src;
    const char *want;
} renderings[] = {
    /* literals and printing */
    {"{{ \"hello\" }} {{ 'it''s' }} {{ \"a\\tb\\\\c\\u00e9\\x41\\101\" }}",
     "hello its a\tb\\c\303\251AA"},
    {"{{ 42 }} {{ -7 }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1.5e-7 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 1_000 }}",
     "42 -7 1.0 0.30000000000000004 1e+16 1000000000000000.0 1.5e-07 0.0001 1e-05 0.3333333333333333 31 5 15 1000"},
    {"{{ true }} {{ false }} {{ none }} {{ True }} {{ None }}",
     "True False None True None"},
    {"{{ [1, \"a\", none, true, 1.5, {\"k\": [1]}] }} {{ (\"a\",) }} {{ (1, 2) }} {{ () }} {{ {} }} {{ [] }}",
     "[1, 'a', None, True, 1.5, {'k': [1]}] ('a',) (1, 2) () {} []"},
    {"{{ [\"it's\", 'say \"hi\"', \"both ' \\\"\", \"tab\\t\", \"\\x01\", \"\303\251\", \"\\u00a0\", \"\\u200b\", \"\360\237\230\200\"] }}",
     "[\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\t', '\\x01', '\303\251', '\\xa0', '\\u200b', '\360\237\230\200']"},
    {"{{ d }} {{ d.items() }} {{ d.keys() }} {{ d.values() }} {{ range(3) }} {{ range(1, 10, 2) }}",
     "{'a': 1, 'b': 2} dict_items([('a', 1), ('b', 2)]) dict_keys(['a', 'b']) dict_values([1, 2]) range(0, 3) range(1, 10, 2)"},
    {"{{ namespace(a=1) }} {{ foo }}|{{ [foo] }}",
     "<Namespace {'a': 1}> |[Undefined]"},
    /* arithmetic and operators */
    {"{{ 1 + 2 * 3 - 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 0.5 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 10 - 2 - 3 }}",
     "5.0 3 -4 1 2 -2 3.0 0.5 1024 0.5 1.4142135623730951 4 64 5"},
    {"{{ \"ab\" * 3 }} {{ 3 * \"x\" }} {{ [1] * 3 }} {{ \"a\" * -1 }}| {{ [1, 2] + [3] }} {{ (1,) + (2,) }} {{ \"a\" + \"b\" }}",
     "ababab xxx [1, 1, 1] | [1, 2, 3] (1, 2) ab"},
    {"{{ \"abc\" ~ 1 ~ none ~ true ~ foo ~ 1.5 }}",
     "abc1NoneTrue1.5"},
    {"{{ 1 == 1.0 }} {{ true == 1 }} {{ \"1\" == 1 }} {{ [1, 2] == [1, 2] }} {{ (1, 2) == [1, 2] }} {{ {\"a\": 1} == {\"a\": 1} }} {{ foo == foo }} {{ foo == none }}",
     "True True False True False True True False"},
    {"{{ 1 < 2.5 }} {{ \"a\" < \"B\" }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ \"\303\251\" < \"z\" }}",
     "True False True True False False"},
    {"{{ 1 in [1.0] }} {{ \"a\" in {\"a\": 1} }} {{ \"bc\" in \"abc\" }} {{ \"\" in \"abc\" }} {{ 4 not in xs }} {{ \"x\" in foo }}",
     "True True True True True False"},
    {"{{ true and \"x\" }} {{ false or \"y\" }} {{ none or 0 }} {{ not xs }} {{ not true or true }} {{ not (true or true) }} {{ xs and d }}",
     "x y 0 False True False {'a': 1, 'b': 2}"},
    {"{{ \"x\" if t else \"y\" }} {{ \"x\" if none }}| {{ \"x\" if false else \"y\" if true else \"z\" }}",
     "x | y"},
    {"{{ - 5 }} {{ +3 }} {{ -1|abs }}",
     "-5 3 1"},
    /* attribute and item access, slices */
    {"{{ messages[0][\"role\"] }} {{ messages[-1].content }} {{ messages.0.role }} {{ m.role }} {{ m[\"content\"] }} {{ d.nope }}|{{ d[\"nope\"] }}|{{ xs[10] }}|{{ xs[-1] }}",
     "system Yo system user hi |||3"},
    {"{{ s[1:3] }} {{ s[::-1] }} {{ s[-3:] }} {{ s[:100] }} {{ s[3:1] }}| {{ s[::-2] }} {{ xs[::2] }} {{ xs[-100:100] }} {{ messages[1:]|length }}",
     "el olleh llo hello | olh [1, 3] [1, 2, 3] 2"},
    {"{{ \"h\303\251llo w\303\266rld\"[1:4] }} {{ \"\346\227\245\346\234\254\350\252\236\343\203\206\343\202\255\343\202\271\343\203\210\"[2:5] }} {{ \"\360\237\230\200a\360\237\230\200\"[::-1] }} {{ \"h\303\251llo\"[1] }} {{ \"h\303\251llo\"|length }}",
     "\303\251ll \350\252\236\343\203\206\343\202\255 \360\237\230\200a\360\237\230\200 \303\251 5"},
    {"{{ xs[true] }} {{ xs[\"count\"] is defined }} {{ d.items is defined }} {{ s.upper is defined }} {{ s.nope is defined }} {{ d.update is defined }}",
     "2 True True True False False"},
    /* string methods */
    {"{{ s.upper() }} {{ \"Hello World\".lower() }} {{ \"hello world\".title() }} {{ \"hELLO\".capitalize() }} {{ \"aBc\".swapcase() }}",
     "HELLO hello world Hello World Hello AbC"},
    {"{{ \"\303\237 stra\303\237e\".upper() }} {{ \"\316\243\316\221\316\243 \316\237\316\224\316\237\316\243\".lower() }} {{ \"\307\206emal\".title() }} {{ \"\304\260\".lower()|length }} {{ \"\303\200\303\211\303\216\".lower() }} {{ \"\357\254\201\".upper() }}",
     "SS STRASSE \317\203\316\261\317\202 \316\277\316\264\316\277\317\202 \307\205emal 2 \303\240\303\251\303\256 FI"},
    {"{{ \"a,b,,c\".split(\",\") }} {{ \"a,b,,c\".split(\",\", 1) }} {{ \"a,b,,c\".rsplit(\",\", 1) }} {{ \"  a  b  \".split() }} {{ \"  a  b  \".split(None, 1) }} {{ \"  a  b  \".rsplit(None, 1) }} {{ \"\".split() }} {{ \"\".split(\",\") }} {{ \"a\\u3000b\".split() }}",
     "['a', 'b', '', 'c'] ['a', 'b,,c'] ['a,b,', 'c'] ['a', 'b'] ['a', 'b  '] ['  a', 'b'] [] [''] ['a', 'b']"},
    {"{{ \"  hi  \".strip() }}|{{ \"  hi  \".lstrip() }}|{{ \"  hi  \".rstrip() }}|{{ \"xxhixx\".strip(\"x\") }}|{{ \"\\n\\ttext\\u3000\\u00a0\".strip() }}|{{ \"<think>\\nx\".lstrip(\"<think>\\n\") }}|",
     "hi|hi  |  hi|hi|text|x|"},
    {"{{ \"abcabc\".find(\"c\") }} {{ \"abcabc\".rfind(\"c\") }} {{ \"abc\".find(\"z\") }} {{ \"h\303\251llo\".find(\"l\") }} {{ \"aaa\".count(\"a\") }} {{ \"abc\".index(\"c\") }}",
     "2 5 -1 2 3 2"},
    {"{{ \"abc\".startswith((\"x\", \"a\")) }} {{ \"abc\".endswith(\"bc\") }} {{ \"abc\".startswith(\"\") }} {{ \"</think>x\".split(\"</think>\")[-1] }}",
     "True True True x"},
    {"{{ \"a-b-c\".replace(\"-\", \"+\", 1) }} {{ \"abc\".replace(\"\", \"|\") }} {{ \"aaa\".replace(\"a\", \"bb\") }}",
     "a+b-c |a|b|c| bbbbbb"},
    {"{{ \"x\".center(5) }}|{{ \"xy\".center(5, \"*\") }}|{{ \"x\".ljust(3, \".\") }}|{{ \"x\".rjust(3) }}|{{ \"-5\".zfill(4) }}|",
     "  x  |**xy*|x..|  x|-005|"},
    {"{{ \"1,2\".partition(\",\") }} {{ \"abc\".rpartition(\"z\") }} {{ \"prefix_x\".removeprefix(\"prefix_\") }} {{ \"a.txt\".removesuffix(\".txt\") }}",
     "('1', ',', '2') ('', '', 'abc') x a"},
    {"{{ \"a\\nb\\r\\nc\\rd\".splitlines() }} {{ \"a\\nb\\n\".splitlines(true) }}",
     "['a', 'b', 'c', 'd'] ['a\\n', 'b\\n']"},
    {"{{ \"  \".isspace() }} {{ \"\".isspace() }} {{ \"abc\".isalpha() }} {{ \"12\".isdigit() }} {{ \"Ab\".isupper() }} {{ \"ab\".islower() }} {{ \"a1\".isalnum() }} {{ \"\302\262\".isdigit() }} {{ \"\302\262\".isdecimal() }}",
     "True False True True False True True True False"},
    {"{{ \"{} and {}\".format(\"a\", \"b\") }} {{ \"{1}{0}\".format(\"a\", \"b\") }} {{ \"{x}!\".format(x=5) }} {{ \"{{}}\".format() }} {{ \"{0!r}\".format(\"q\") }} {{ \"{0[role]}\".format(m) }}",
     "a and b ba 5! {} 'q' user"},
    {"{{ \"%s is %d years\" % (\"Bob\", 30) }} {{ \"%.2f\" % 3.14159 }} {{ \"%s\" % [1, 2] }} {{ \"100%%\" % () }} {{ \",\".join([\"a\", \"b\"]) }} {{ \"\".join(\"abc\") }}",
     "Bob is 30 years 3.14 [1, 2] 100% a,b abc"},
    /* dict and list methods */
    {"{{ d.get(\"a\") }} {{ d.get(\"z\") }} {{ d.get(\"z\", 9) }} {{ d.items()|list }} {{ d.copy() }} {{ xs.count(1) }} {{ xs.index(2) }} {{ xs.copy() }}",
     "1 None 9 [('a', 1), ('b', 2)] {'a': 1, 'b': 2} 1 1 [1, 2, 3]"},
    /* filters */
    {"{{ s|upper }} {{ s|title }} {{ s|capitalize }} {{ \"  x  \"|trim }} {{ \"xxax\"|trim(\"x\") }} {{ s|length }} {{ d|count }} {{ foo|length }} {{ xs|join(\",\") }} {{ xs|join }}",
     "HELLO Hello Hello x a 5 2 0 1,2,3 123"},
    {"{{ \"hello there-you (x) [y]\"|title }} {{ \"they're bill's\"|title }} {{ \"Hello\"|lower }} {{ foo|upper }}|",
     "Hello There-You (X) [Y] They're Bill's hello |"},
    {"{{ messages|map(attribute=\"role\")|join(\",\") }} {{ xs|map(\"string\")|join(\"-\") }} {{ [\"a\", \"B\"]|map(\"upper\")|list }} {{ messages|map(attribute=\"missing\", default=\"\077\")|list }}",
     "system,user,assistant 1-2-3 ['A', 'B'] ['\077', '\077', '\077']"},
    {"{{ messages|selectattr(\"role\", \"equalto\", \"user\")|list }} {{ messages|rejectattr(\"role\", \"equalto\", \"system\")|map(attribute=\"content\")|join(\"/\") }}",
     "[{'role': 'user', 'content': 'Hi'}] Hi/Yo"},
    {"{{ xs|select(\"odd\")|list }} {{ xs|reject(\"odd\")|list }} {{ [0, 1, none, \"\", \"a\"]|select|list }} {{ xs|select(\"greaterthan\", 1)|list }} {{ e|select(\"odd\")|list }}",
     "[1, 3] [2] [1, 'a'] [2, 3] []"},
    {"{{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [\"b\", \"a\", \"C\"]|sort }} {{ [\"b\", \"a\", \"C\"]|sort(case_sensitive=true) }} {{ messages|sort(attribute=\"role\")|map(attribute=\"role\")|list }}",
     "[1, 2, 3] [3, 2, 1] ['a', 'b', 'C'] ['C', 'a', 'b'] ['assistant', 'system', 'user']"},
    {"{{ {\"b\": 1, \"a\": 2, \"C\": 0}|dictsort }} {{ {\"b\": 1, \"a\": 2}|dictsort(by=\"value\") }} {{ {\"b\": 1, \"a\": 2}|dictsort(reverse=true) }}",
     "[('a', 2), ('b', 1), ('C', 0)] [('b', 1), ('a', 2)] [('b', 1), ('a', 2)]"},
    {"{{ [1, 2, 1, \"a\", \"A\"]|unique|list }} {{ [\"a\", \"A\"]|unique(case_sensitive=true)|list }} {{ [1, 5, 3]|max }} {{ [1, 5, 3]|min }} {{ [\"a\", \"B\"]|max }} {{ e|max }}|",
     "[1, 2, 'a'] ['a', 'A'] 5 1 B |"},
    {"{{ xs|sum }} {{ [1.5, 2]|sum }} {{ xs|sum(start=10) }} {{ xs|batch(2)|list }} {{ xs|batch(2, \"x\")|list }} {{ range(7)|slice(3)|list }}",
     "6 3.5 16 [[1, 2], [3]] [[1, 2], [3, 'x']] [[0, 1, 2], [3, 4], [5, 6]]"},
    {"{{ xs|first }} {{ e|first }}| {{ \"abc\"|first }} {{ d|first }} {{ xs|last }} {{ \"abc\"|last }} {{ d|list }} {{ \"ab\"|list }} {{ foo|list }} {{ d|items|list }}",
     "1 | a a 3 c ['a', 'b'] ['a', 'b'] [] [('a', 1), ('b', 2)]"},
    {"{{ 3|int }} {{ 3.9|int }} {{ \"0x1A\"|int(0, 16) }} {{ \"1_000\"|int }} {{ \" 42 \"|int }} {{ \"4.9e1\"|int }} {{ \"abc\"|int(-1) }} {{ none|int }} {{ true|int }} {{ \"10\"|int(base=2) }}",
     "3 3 26 1000 42 49 -1 0 1 2"},
    {"{{ \"3.5\"|float }} {{ 2|float }} {{ \"x\"|float }} {{ \" 1e3 \"|float }} {{ \"-inf\"|float }}",
     "3.5 2.0 0.0 1000.0 -inf"},
    {"{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 1234.5|round(-2) }} {{ 1250|round(-2) }} {{ 2.1|round(method=\"ceil\") }} {{ 2.9|round(method=\"floor\") }} {{ 7|round }} {{ -2.5|round }}",
     "2.0 4.0 2.67 1200.0 1200 3.0 2.0 7 -2.0"},
    {"{{ -3|abs }} {{ -3.5|abs }} {{ \"<a href='x'>&</a>\"|e }} {{ \"<b>\"|escape }} {{ \"x\"|safe }}",
     "3 3.5 &lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt; &lt;b&gt; x"},
    {"{{ \"hello world foo\"|truncate(9) }} {{ \"hello world foo\"|truncate(9, true) }} {{ \"hello\"|truncate(10) }} {{ \"one two  three\"|wordcount }}",
     "hello... hello ... hello 3"},
    {"{{ \"a\\nb\\nc\"|indent }}|{{ \"a\\nb\"|indent(first=true) }}|{{ \"a\\n\\nb\\n\"|indent(2) }}|{{ \"a\\n\\nb\"|indent(\"> \", blank=true) }}|",
     "a\n    b\n    c|    a\n    b|a\n\n  b\n|a\n> \n> b|"},
    {"{{ \"%s-%s\"|format(\"a\", 1) }} {{ \"x\"|string ~ 1|string }} {{ none|string }} {{ [1]|string }}",
     "a-1 x1 None [1]"},
    {"{{ \"a\"|default }} {{ foo|default }}| {{ foo|d(\"dd\") }} {{ none|default(\"x\") }} {{ none|default(\"x\", true) }} {{ \"\"|default(\"e\", true) }} {{ 0|d(\"z\", boolean=true) }}",
     "a | dd None x e z"},
    {"{{ \"ab\"|reverse }} {{ xs|reverse|list }} {{ d|reverse|list }} {{ xs|length + 1 }} {{ s|upper ~ \"!\" }} {{ s|attr(\"upper\") is defined }} {{ m|attr(\"role\") }}|",
     "ba [3, 2, 1] ['b', 'a'] 4 HELLO! True |"},
    {"{{ d|tojson }} {{ [1, \"\303\251\", none, true, 1.5, {\"k\": \"v\"}]|tojson }} {{ \"\\u0001\\t\\u007f\\\"\\\\\"|tojson }} {{ {\"b\": 1, \"a\": [1, {}]}|tojson(indent=2, sort_keys=true) }} {{ xs|tojson(separators=(\",\", \":\")) }}",
     "{\"a\": 1, \"b\": 2} [1, \"\303\251\", null, true, 1.5, {\"k\": \"v\"}] \"\\u0001\\t\177\\\"\\\\\" {\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": 1\n} [1,2,3]"},
    {"{{ \"\303\251\360\237\230\200\"|tojson(ensure_ascii=true) }} {{ {\"a\": []}|tojson(indent=\"\\t\") }} {{ {1: 2, none: 3, true: 4, 1.5: 5}|tojson }} {{ (1, 2)|tojson }} {{ 1e20|tojson }} {{ []|tojson(indent=2) }} {{ {\"x\": [1, [2, {\"y\": none}]]}|tojson(indent=1) }}",
     "\"\\u00e9\\ud83d\\ude00\" {\n\t\"a\": []\n} {\"1\": 4, \"null\": 3, \"1.5\": 5} [1, 2] 1e+20 [] {\n \"x\": [\n  1,\n  [\n   2,\n   {\n    \"y\": null\n   }\n  ]\n ]\n}"},
    /* tests */
    {"{{ foo is defined }} {{ foo is undefined }} {{ s is string }} {{ xs is iterable }} {{ d is mapping }} {{ 3 is odd }} {{ 2.0 is even }} {{ n is none }} {{ xs is not none }} {{ not foo is defined }}",
     "False True True True True True True True True True"},
    {"{{ true is true }} {{ 1 is true }} {{ 1 is number }} {{ true is number }} {{ 1.5 is float }} {{ 1 is integer }} {{ true is integer }} {{ true is boolean }} {{ \"a\" is lower }} {{ \"A1\" is upper }} {{ 4 is divisibleby 2 }} {{ 4 is divisibleby(3) }}",
     "True False True True True True False True True True True False"},
    {"{{ xs is sequence }} {{ d is sequence }} {{ s is sequence }} {{ 1 is sequence }} {{ d.items() is sequence }} {{ 1 is iterable }} {{ foo is iterable }} {{ none is mapping }}",
     "True True True False False False True False"},
    {"{{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 2 is gt 1 }} {{ 2 is ge 2 }} {{ 1 is lt 2 }} {{ 2 is le 1 }} {{ 1 is in xs }} {{ none is sameas none }} {{ \"upper\" is filter }} {{ \"odd\" is test }} {{ range is callable }}",
     "True False True True True True False True True True True True"},
    /* statements */
    {"{% for x in xs %}{{ loop.index }}:{{ x }}{{ \",\" if not loop.last }}{% endfor %}",
     "1:1,2:2,3:3"},
    {"{% for x in xs %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.depth }}|{% endfor %}",
     "032TrueFalse31|121FalseFalse31|210FalseTrue31|"},
    {"{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %} {% for x in [1, 1, 2] %}{{ loop.changed(x) }}{% endfor %} {% for x in xs %}{{ loop.cycle(\"o\", \"e\") }}{% endfor %}",
     "-2;1-3;2-; TrueFalseTrue oeo"},
    {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for (a, b), c in [((1, 2), 3)] %}{{ a }}{{ b }}{{ c }}{% endfor %} {% for c in \"h\303\251y\" %}[{{ c }}]{% endfor %} {% for k in d %}{{ k }}{% endfor %}",
     "a=1;b=2; 123 [h][\303\251][y] ab"},
    {"{% for x in xs if x > 1 %}{{ loop.index }}/{{ loop.length }} {% else %}none{% endfor %}|{% for x in e %}x{% else %}empty{% endfor %}|{% for x in foo %}no{% else %}else{% endfor %}",
     "1/2 2/2 |empty|else"},
    {"{% for x in xs %}{% if loop.index == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}|{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}",
     "1|13"},
    {"{% for x in xs %}{% for y in xs %}{{ loop.index }}{% endfor %}{{ loop.index }}|{% endfor %}",
     "1231|1232|1233|"},
    {"{% set x = 5 %}{% for x in xs %}{% endfor %}{{ x }} {% for q in xs %}{% set y = q %}{% endfor %}{{ y }}| {% set z = 0 %}{% for q in xs %}{% set z = z + q %}{% endfor %}{{ z }}",
     "5 | 0"},
    {"{% set x = 1 %}{% for i in xs %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}",
     "1112131"},
    {"{% if true %}{% set z = 1 %}{% endif %}{{ z }} {% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = 1, 2 %}{{ t }}",
     "1 12 (1, 2)"},
    {"{% set ns = namespace(a=1) %}{% for x in xs %}{% set ns.a = ns.a + x %}{% endfor %}{{ ns.a }} {{ ns }} {{ ns[\"a\"] }}",
     "7 <Namespace {'a': 7}> 7"},
    {"{% set ns = namespace({\"a\": 1}, b=2) %}{{ ns.a }}{{ ns.b }} {% set ns = namespace(items=[]) %}{% set ns.items = ns.items + [1] %}{% set ns.items = ns.items + [2] %}{{ ns.items }}",
     "12 [1, 2]"},
    {"{% set ns = namespace(c=0) %}{% macro inc() %}{% set ns.c = ns.c + 1 %}{% endmacro %}{{ inc() }}{{ inc() }}{{ ns.c }}",
     "2"},
    {"{% macro f(a, b=2) %}[{{ a }}|{{ b }}]{% endmacro %}{{ f(1) }}{{ f(1, 3) }}{{ f(b=5) }}{{ f(b=1, a=2) }} {{ f }}",
     "[1|2][1|3][|5][2|1] <Macro 'f'>"},
    {"{% macro f(a, b=a*2) %}{{ a }}-{{ b }}{% endmacro %}{{ f(3) }} {% macro g() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ g(1, 2, k=3) }}",
     "3-6 (1, 2){'k': 3}"},
    {"{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }} {% macro outer() %}{% macro inner() %}in{% endmacro %}{{ inner() }}{% endmacro %}{{ outer() }}",
     "54321 in"},
    {"{% macro m(x) %}{{ x }}{{ caller(7) }}{% endmacro %}{% call(v) m(1) %}[{{ v }}]{% endcall %} {% macro m2() %}<{{ caller() }}>{% endmacro %}{% call m2() %}{{ s }}{% endcall %}",
     "1[7] <hello>"},
    {"{% set x = 1 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 2 %}{{ m() }} {% for i in xs %}{% macro m() %}{{ i }}{% endmacro %}{{ m() }}{% endfor %} {% macro m() %}{% set q = 1 %}{% endmacro %}{{ m() }}{{ q }}|",
     "2 123 |"},
    {"{% with x = 1 %}{% set y = 2 %}{{ x }}{{ y }}{% endwith %}{{ x }}{{ y }}| {% set x = 1 %}{% with x = 2, y = x %}{{ x }}{{ y }}{% endwith %}",
     "12| 21"},
    {"{% filter trim %}   padded   {% endfilter %}|{% filter replace(\"a\", \"b\")|upper %}aaa{% endfilter %}|{% set v | upper %}text{% endset %}{{ v }}|{% set w %}a{{ s }}b{% endset %}{{ w }}|{% print s, 1 %}",
     "padded|BBB|TEXT|ahellob|hello1"},
    {"{% if false %}a{% elif true %}b{% else %}c{% endif %}{% if false %}a{% elif false %}b{% else %}c{% endif %}{% if 1, 2 %}t{% endif %}",
     "bct"},
    {"{{ dict(a=1, b=2) }} {{ dict([(\"x\", 1)]) }} {{ dict(d, c=3) }} {{ range(10, 0, -3)|list }} {{ range(0)|list }} {{ range(-3)|list }}",
     "{'a': 1, 'b': 2} {'x': 1} {'a': 1, 'b': 2, 'c': 3} [10, 7, 4, 1] [] []"},
    {"{{ strftime_now(\"%Y-%m-%d %H:%M:%S %A %a %B %b %j %y %p %I %f %z|%Z|%%\") }}",
     "2024-07-26 10:30:00 Friday Fri July Jul 208 24 AM 10 000000 ||%"},
    /* whitespace control */
    {"a\n  {% if true %}\nb\n  {% endif %}\nc",
     "a\nb\nc"},
    {"  {%+ if true %}x{% endif %}",
     "  x"},
    {"{% if true +%}\nx{% endif %}",
     "\nx"},
    {"  {{ s }}  \n  {# c #}\nx",
     "  hello  \nx"},
    {" {#- c -#} y",
     "y"},
    {"a {%- if true -%} b {%- endif -%} c",
     "abc"},
    {"a\n\n  {%- if true %}\nb\n{% endif %}\n\n",
     "ab\n"},
    {"{% raw %}\n  {{ x }}\n  {% endraw %}",
     "\n  {{ x }}\n"},
    {"  {% raw -%}   {{ y }}   {%- endraw %}  z",
     "{{ y }}  z"},
    {"line1\n{% for x in xs %}\n  {{ x }}\n{% endfor %}\nend",
     "line1\n  1\n  2\n  3\nend"},
    {"{% for x in xs -%}\n  {{ x }}\n{%- endfor %}",
     "123"},
    {"  {%- for x in xs %} {{ x }} {% endfor -%}  ",
     " 1  2  3 "},
    {"x{# multi\nline\ncomment #}y\n{# c #}\nz",
     "xy\nz"},
    {"\t{% if true %}tab{% endif %}",
     "tab"},
    {"{{- s }}\n    {% set y = 2 %}\n  val={{ y }}",
     "hello\n  val=2"},
    {"{% macro m() %}\n  inside\n{% endmacro %}\n[{{ m() }}]",
     "[  inside\n]"},
    {"{%- if true -%}\n   {{ s }}\n{%- endif -%}",
     "hello"},
    {"a\r\nb\rc\n{% if true %}\r\nd{% endif %}\n",
     "a\nb\nc\nd"},
    {"trailing newline dropped\n",
     "trailing newline dropped"},
    {"two trailing newlines\n\n",
     "two trailing newlines\n"},
    {"\343\200\200 {% if true %}ideographic space is whitespace{% endif %}",
     "ideographic space is whitespace"},
    {"{{ \"{{\" }} {{ \"}}\" }} {{ '{% raw %}' }} {{ {\"a\": {\"b\": 1}}[\"a\"][\"b\"] }}",
     "{{ }} {% raw %} 1"},
    /* printf-style formatting */
    {"{{ \"%#x|%#o|%+05d|% d|%-5s|%.1s|%5.2f|%e|%G|%c|%c|%x|%#X|%05s|%d|%d|%i\" % (0, 8, 3, 3, \"ab\", \"xyz\", 3.14159, 12345.678, 1e-10, 65, \"z\", -255, 255, \"a\", 3.9, true, -0.5) }}",
     "0x0|0o10|+0003| 3|ab   |x| 3.14|1.234568e+04|1E-10|A|z|-ff|0XFF|    a|3|1|0"},
    {"{{ \"%a|%r|%10r|%-08.3f|%g|%g|%#g|%.0f|%ld|%u|%c|%s\" % (\"\303\251\", \"\303\251\", \"x\", -2.5, 100000.0, 1e16, 1.0, 2.5, 5, 7, 128512, none) }}",
     "'\\xe9'|'\303\251'|       'x'|-2.500  |100000|1e+16|1.00000|2|5|7|\360\237\230\200|None"},
    {"{{ \"%(a)s-%(b)d\" % {\"a\": \"x\", \"b\": 2} }} {{ \"%s\" % {\"a\": 1} }} {{ \"%*d|%.*f\" % (5, 3, 2, 3.14159) }} {{ \"%s\" % [1, 2] }} {{ \"5s\" % [1, 2] }} {{ \"%.3d|%5.3x|%-+6d|%06.2f|%+.1e|% g\" % (5, 10, 42, -1.5, 12345.0, 0.0001) }}",
     "x-2 {'a': 1}     3|3.14 [1, 2] 5s 005|  00a|+42   |-01.50|+1.2e+04| 0.0001"},
    {"{{ \"%s\"|format(xs) }} {{ \"%d items\"|format(3) }} {{ \"%-3s|\"|format(\"a\") }}",
     "[1, 2, 3] 3 items a  |"},
    /* more filter edge cases */
    {"{{ xs|batch(foo)|list }} {{ xs|batch(0)|list }} {{ xs|batch(2, 0)|list }} {{ xs|batch(5, \"x\")|list }} {{ xs|slice(-1)|list }} {{ \"10\"|int(base=foo) }}",
     "[[1, 2, 3]] [[], [1, 2, 3]] [[1, 2], [3, 0]] [[1, 2, 3, 'x', 'x']] [] 10"},
    {"{{ \"\\r\"|indent }}|{{ \"a\\r\"|indent }}|{{ \"a\\r\\n\"|indent(1) }}|{{ \"\\n\"|indent(first=true) }}|{{ \"\"|indent(blank=true, first=true) }}|{{ \"a\\x0bb\\u2028c\"|indent }}",
     "|a|a\n|    \n|    |a\n    b\n    c"},
    {"{{ \"hello world foo\"|truncate(90, true, foo) }} {{ [{\"a\": 2, \"b\": 1}, {\"a\": 1, \"b\": 2}]|sort(attribute=\"a,b\") }} {{ messages|sort(attribute=\"nope\")|map(attribute=\"role\")|list }}",
     "hello world foo [{'a': 1, 'b': 2}, {'a': 2, 'b': 1}] ['system', 'user', 'assistant']"},
    {"{{ [foo, foo]|unique|list }} {{ {foo: 1} }}",
     "[Undefined] {Undefined: 1}"},
    /* scoping */
    {"{{ x }}{% set x = 5 %}{{ x }} {% for i in xs %}{{ i }}{% set i = 9 %}{{ i }}{% endfor %}{{ i }}| {% for x in xs %}{% if loop.first %}{% set y = 1 %}{% endif %}{{ y }}|{% endfor %}",
     "5 192939| 1|||"},
    {"{% macro m() %}{{ x }}{% endmacro %}{% for x in xs %}{{ m() }}{% endfor %}| {% set x = 1 %}{% macro m() %}{% set x = 2 %}{{ x }}{% endmacro %}{{ m() }}{{ x }}",
     "| 21"},
    {"{% set loop = 5 %}{{ loop }}{% for x in xs %}{{ loop.index }}{% endfor %}{{ loop }} {% macro m(loop) %}{{ loop }}{% endmacro %}{{ m(3) }} {% for x in xs %}{% macro m() %}{{ loop.index }}{% endmacro %}{{ m() }}{% endfor %}",
     "51235 3 123"},
    {"{% with %}{% set q = 1 %}{% endwith %}{{ q }}| {% filter upper %}{% set q = 1 %}{{ q }}{% endfilter %}{{ q }}| {% set range = 5 %}{{ range }} {% for x in [] %}{% else %}{{ loop }}{% endfor %}|",
     "| 1| 5 |"},
    {"{% macro m() %}{{ caller() }}{% endmacro %}{% for x in xs %}{% call m() %}{{ x }}{{ loop.index }}{% endcall %}{% endfor %}",
     "112233"},
    {"{% for a in xs %}{% for b in xs %}{% if b > a %}{% break %}{% endif %}{{ a }}{{ b }} {% endfor %}{% endfor %}",
     "11 21 22 31 32 33 "},
    {"a {#",
     "a "},
    /* generators are used up once iterated */
    {"{% set g = xs|map(\"string\") %}{{ g|join(\",\") }}|{{ g|join(\",\") }}|",
     "1,2,3||"},
    {"{% set g = xs|select %}{{ g|first }}{{ g|list }}{{ g|list }}",
     "1[2, 3][]"},
    {"{% set g = xs|select %}{{ 2 in g }}{{ g|list }}",
     "True[3]"},
    {"{% set g = xs|reject(\"odd\") %}{% for x in g %}{{ x }}{% endfor %}{% for x in g %}{{ x }}{% endfor %}|",
     "2|"},
    {"{% set g = messages|selectattr(\"role\", \"equalto\", \"user\") %}{% if g %}T{% endif %}{{ g|length if false else g|list|length }}{{ g|list|length }}",
     "T10"},
    {"{% set g = xs|reverse %}{{ g|first }}{{ g|list }}",
     "3[2, 1]"},
    {"{% set g = d|items %}{{ g|list }}{{ g|list }}",
     "[('a', 1), ('b', 2)][]"},
    {"{{ [1] * 2 }} {{ (1,) * 2 }}",
     "[1, 1] (1, 1)"},
    {"{% set g = xs|unique %}{{ \",\".join(g|map(\"string\")) }}{{ g|list }}",
     "1,2,3[]"},
    {"{% set g = xs|batch(2) %}{% for b in g %}{{ b }}{% endfor %}{{ g|list }}",
     "[1, 2][3][]"},
    {"{% set g = xs|select %}{{ 5 in g }}{{ g|list }}",
     "False[]"},
};

/* ---- helpers ------------------------------------------------------------------------- */

static wl_jinja_value *str(const char *s) { return wl_jinja_value_string(s, strlen(s)); }

static wl_jinja_value *message(const char *role, const char *content)
{
    wl_jinja_value *m = wl_jinja_value_dict();
    assert_int_equal(wl_jinja_dict_set(m, "role", str(role)), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(m, "content", str(content)), WANDLER_OK);
    return m;
}

/* xs=[1,2,3], d={a:1,b:2}, s="hello", m={role:user,content:hi}, messages=[system, user,
 * assistant], n=None, t=True, f=1.5, e=[], bos_token, eos_token, add_generation_prompt. */
static wl_jinja_value *make_context(void)
{
    wl_jinja_value *ctx = wl_jinja_value_dict(), *xs = wl_jinja_value_list(), *d = wl_jinja_value_dict();
    for (int i = 1; i <= 3; i++) assert_int_equal(wl_jinja_list_append(xs, wl_jinja_value_int(i)), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(d, "a", wl_jinja_value_int(1)), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(d, "b", wl_jinja_value_int(2)), WANDLER_OK);
    wl_jinja_value *msgs = wl_jinja_value_list();
    assert_int_equal(wl_jinja_list_append(msgs, message("system", "Sys")), WANDLER_OK);
    assert_int_equal(wl_jinja_list_append(msgs, message("user", "Hi")), WANDLER_OK);
    assert_int_equal(wl_jinja_list_append(msgs, message("assistant", "Yo")), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "xs", xs), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "d", d), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "s", str("hello")), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "m", message("user", "hi")), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "messages", msgs), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "n", wl_jinja_value_none()), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "t", wl_jinja_value_bool(1)), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "f", wl_jinja_value_float(1.5)), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "e", wl_jinja_value_list()), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "bos_token", str("<s>")), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "eos_token", str("</s>")), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "add_generation_prompt", wl_jinja_value_bool(1)), WANDLER_OK);
    return ctx;
}

/* 2024-07-26 10:30:00, a Friday: what strftime_now() formats. */
static struct tm fixed_time(void)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = 124;
    tm.tm_mon = 6;
    tm.tm_mday = 26;
    tm.tm_hour = 10;
    tm.tm_min = 30;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    return tm;
}

/* Parses and renders src with ctx and opts (NULL: defaults with the fixed time). Returns the
 * status; *out gets the text (malloc'd) on success. */
static int render_opts(const char *src, size_t len, const wl_jinja_value *ctx, const wl_jinja_options *opts,
                       char **out, wandler_error *err)
{
    wl_jinja_template *tpl = NULL;
    *out = NULL;
    int rc = wl_jinja_parse(src, len, &tpl, err);
    if (rc != WANDLER_OK) return rc;
    struct tm now = fixed_time();
    wl_jinja_options o = opts ? *opts : wl_jinja_options_default();
    if (!opts) o.now = &now;
    wl_buf b = {0};
    rc = wl_jinja_render(tpl, ctx, &o, &b, err);
    wl_jinja_free(tpl);
    if (rc == WANDLER_OK) *out = wl_buf_take(&b);
    wl_buf_free(&b);
    return rc;
}

static int render(const char *src, char **out, wandler_error *err)
{
    wl_jinja_value *ctx = make_context();
    int rc = render_opts(src, strlen(src), ctx, NULL, out, err);
    wl_jinja_value_free(ctx);
    return rc;
}

/* Expects src to fail with `code` and a message containing each of the NULL-terminated
 * fragments. */
static void expect_error(const char *src, int code, ...)
{
    char *out;
    wandler_error err;
    int rc = render(src, &out, &err);
    if (rc != code) {
        fail_msg("%s\n  want status %d, got %d (%s)%s%s", src, code, rc, rc ? err.message : "",
                 out ? " output: " : "", out ? out : "");
    }
    assert_int_equal(err.code, code);
    va_list ap;
    va_start(ap, code);
    for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;)
        if (!strstr(err.message, frag)) fail_msg("%s\n  message \"%s\" lacks \"%s\"", src, err.message, frag);
    va_end(ap);
    free(out);
}

/* ---- renderings identical to jinja2 -------------------------------------------------- */

static void test_renderings_match_jinja2(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof renderings / sizeof renderings[0]; i++) {
        char *out;
        wandler_error err;
        int rc = render(renderings[i].src, &out, &err);
        if (rc != WANDLER_OK) {
            print_message("case %zu failed: %s\n  %s\n", i, err.message, renderings[i].src);
            bad++;
        } else if (strcmp(out, renderings[i].want) != 0) {
            print_message("case %zu:\n  template: %s\n  want: %s\n  got:  %s\n", i, renderings[i].src,
                          renderings[i].want, out);
            bad++;
        }
        free(out);
    }
    assert_int_equal(bad, 0);
}

/* ---- errors -------------------------------------------------------------------------- */

static void test_parse_errors_name_construct_and_line(void **state)
{
    (void)state;
    expect_error("line 1\nline 2\n{{ x | frobnicate }}", WANDLER_ERR_TEMPLATE, "line 3: unknown filter 'frobnicate'", NULL);
    expect_error("{% if x %}", WANDLER_ERR_TEMPLATE, "line 1: unterminated {% if %} (opened at line 1)", NULL);
    expect_error("a\n{% for x in xs %}\n{% if x %}\nb\n", WANDLER_ERR_TEMPLATE, "unterminated {% if %} (opened at line 3)", NULL);
    expect_error("{% macro m() %}\n\n", WANDLER_ERR_TEMPLATE, "unterminated {% macro %}", NULL);
    expect_error("{{ x is frobnicated }}", WANDLER_ERR_TEMPLATE, "line 1: unknown test 'frobnicated'", NULL);
    expect_error("\n\n\n{% frob %}", WANDLER_ERR_TEMPLATE, "line 4: unknown tag 'frob'", NULL);
    expect_error("{% endfor %}", WANDLER_ERR_TEMPLATE, "unexpected {% endfor %}", NULL);
    expect_error("{% if x %}\n{% endfor %}", WANDLER_ERR_TEMPLATE, "line 2: unexpected {% endfor %}",
                 "innermost open block is {% if %} (opened at line 1)", NULL);
    expect_error("{{ }}", WANDLER_ERR_TEMPLATE, "line 1: unexpected '}}', expected an expression", NULL);
    expect_error("{{ (1 }}", WANDLER_ERR_TEMPLATE, "unexpected '}', expected ')'", NULL);
    expect_error("{{ a b }}", WANDLER_ERR_TEMPLATE, "unexpected 'b', expected '}}'", NULL);
    expect_error("\n{{ \"open }}", WANDLER_ERR_TEMPLATE, "line 2: unterminated string literal", NULL);
    expect_error("{# never closed", WANDLER_ERR_TEMPLATE, "unterminated comment", NULL);
    expect_error("{% raw %} never closed", WANDLER_ERR_TEMPLATE, "unterminated {% raw %}", NULL);
    expect_error("{{ 1 @ 2 }}", WANDLER_ERR_TEMPLATE, "unexpected character '@'", NULL);
    expect_error("{{ \"\\x4\" }}", WANDLER_ERR_TEMPLATE, "truncated \\xXX escape", NULL);
    expect_error("{% break %}", WANDLER_ERR_TEMPLATE, "'break' outside of a for loop", NULL);
    expect_error("{% macro f(a=1, b) %}{% endmacro %}", WANDLER_ERR_TEMPLATE, "non-default parameter", NULL);
    expect_error("{% set 1 = 2 %}", WANDLER_ERR_TEMPLATE, "cannot assign", NULL);
    expect_error("{{ f(a=1, 2) }}", WANDLER_ERR_TEMPLATE, "invalid syntax for a function call", NULL);
    expect_error("{% extends 'base.html' %}", WANDLER_ERR_TEMPLATE, "{% extends %} is not supported", NULL);
    expect_error("{% for x in xs recursive %}{% endfor %}", WANDLER_ERR_TEMPLATE, "recursive", NULL);
    expect_error("{{ 99999999999999999999 }}", WANDLER_ERR_TEMPLATE, "integer literal too large", NULL);
}

static void test_render_errors(void **state)
{
    (void)state;
    expect_error("ok\n{{ foo.bar }}", WANDLER_ERR_TEMPLATE, "line 2: 'foo' is undefined", NULL);
    expect_error("{{ d.c.x }}", WANDLER_ERR_TEMPLATE, "'dict object' has no attribute 'c'", NULL);
    expect_error("{{ messages[5]['role'] }}", WANDLER_ERR_TEMPLATE, "'list object' has no element 5", NULL);
    expect_error("{{ foo + 1 }}", WANDLER_ERR_TEMPLATE, "'foo' is undefined", NULL);
    expect_error("{{ foo() }}", WANDLER_ERR_TEMPLATE, "'foo' is undefined", NULL);
    expect_error("\n\n{{ raise_exception('Conversation roles must alternate') }}", WANDLER_ERR_TEMPLATE,
                 "line 3: Conversation roles must alternate", NULL);
    expect_error("{{ 1 + 'a' }}", WANDLER_ERR_TEMPLATE, "unsupported operand type(s) for +: 'int' and 'str'", NULL);
    expect_error("{{ 'a' + 1 }}", WANDLER_ERR_TEMPLATE, "can only concatenate str", NULL);
    expect_error("{{ 1 / 0 }}", WANDLER_ERR_TEMPLATE, "division by zero", NULL);
    expect_error("{{ 1 < 'a' }}", WANDLER_ERR_TEMPLATE, "'<' not supported between instances of 'int' and 'str'", NULL);
    expect_error("{{ xs.append(4) }}", WANDLER_ERR_TEMPLATE, "access to attribute 'append' of 'list' object is unsafe", NULL);
    expect_error("{{ d.update({}) }}", WANDLER_ERR_TEMPLATE, "unsafe", NULL);
    expect_error("{% for x in 5 %}{% endfor %}", WANDLER_ERR_TEMPLATE, "'int' object is not iterable", NULL);
    expect_error("{% for a, b in [[1, 2, 3]] %}{% endfor %}", WANDLER_ERR_TEMPLATE, "too many values to unpack", NULL);
    expect_error("{% set ns = {} %}{% set ns.x = 1 %}", WANDLER_ERR_TEMPLATE, "non-namespace object", NULL);
    expect_error("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}", WANDLER_ERR_TEMPLATE, "macro 'f' takes not more than 1 argument(s)", NULL);
    expect_error("{% macro f(a) %}{% endmacro %}{{ f(x=1) }}", WANDLER_ERR_TEMPLATE, "macro 'f' takes no keyword argument 'x'", NULL);
    expect_error("{% macro f(a) %}{{ a + 1 }}{% endmacro %}{{ f() }}", WANDLER_ERR_TEMPLATE, "parameter 'a' was not provided", NULL);
    expect_error("{{ xs|unknownfilter }}", WANDLER_ERR_TEMPLATE, "unknown filter", NULL);
    expect_error("{{ xs|map('nosuchfilter')|list }}", WANDLER_ERR_TEMPLATE, "no filter named 'nosuchfilter'", NULL);
    expect_error("{{ d.items()|tojson }}", WANDLER_ERR_TEMPLATE, "Object of type dict_items is not JSON serializable", NULL);
    expect_error("{{ foo|tojson }}", WANDLER_ERR_TEMPLATE, "foo", NULL);
    expect_error("{{ 'x'.split('') }}", WANDLER_ERR_TEMPLATE, "empty separator", NULL);
    expect_error("{{ xs[::0] }}", WANDLER_ERR_TEMPLATE, "slice step cannot be zero", NULL);
    expect_error("{{ 9223372036854775807 + 1 }}", WANDLER_ERR_TEMPLATE, "integer overflow", NULL);
    expect_error("{{ {[1]: 2} }}", WANDLER_ERR_TEMPLATE, "unhashable type: 'list'", NULL);
    /* found by fuzzing: the message used a string already freed */
    expect_error("{{ 'hello world foo'|truncate(true) }}", WANDLER_ERR_TEMPLATE, "expected length >= 3", NULL);
}

/* ---- limits -------------------------------------------------------------------------- */

static void test_limits_stop_hostile_templates(void **state)
{
    (void)state;
    /* a macro calling itself forever */
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}", WANDLER_ERR_TEMPLATE_LIMIT, "nested deeper", NULL);
    /* huge loops */
    expect_error("{% for i in range(10**9) %}{% endfor %}", WANDLER_ERR_TEMPLATE_LIMIT, "range()", NULL);
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                 WANDLER_ERR_TEMPLATE_LIMIT, "evaluation steps", NULL);
    /* exponential string growth */
    expect_error("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 WANDLER_ERR_TEMPLATE_LIMIT, "string longer than", NULL);
    expect_error("{{ 'x' * 1000000000 }}", WANDLER_ERR_TEMPLATE_LIMIT, "string longer than", NULL);
    expect_error("{{ [1, 2] * 1000000000 }}", WANDLER_ERR_TEMPLATE_LIMIT, "too long", NULL);
    expect_error("{% set ns = namespace(l=[0]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
                 WANDLER_ERR_TEMPLATE_LIMIT, NULL);
    /* output larger than allowed */
    {
        wl_jinja_options o = wl_jinja_options_default();
        o.max_output = 1000;
        const char *src = "{% for i in range(1000) %}xx{% endfor %}";
        char *out;
        wandler_error err;
        assert_int_equal(render_opts(src, strlen(src), NULL, &o, &out, &err), WANDLER_ERR_TEMPLATE_LIMIT);
        assert_non_null(strstr(err.message, "output"));
        o.max_output = 2000;
        assert_int_equal(render_opts(src, strlen(src), NULL, &o, &out, &err), WANDLER_OK);
        assert_int_equal(strlen(out), 2000);
        free(out);
    }
    /* memory budget */
    {
        wl_jinja_options o = wl_jinja_options_default();
        o.max_memory = 1 << 20;
        const char *src = "{% set ns = namespace(l=[]) %}{% for i in range(100) %}"
                          "{% set ns.l = ns.l + ['x' * 100000 ~ i] %}{% endfor %}{{ ns.l|length }}";
        char *out;
        wandler_error err;
        assert_int_equal(render_opts(src, strlen(src), NULL, &o, &out, &err), WANDLER_ERR_TEMPLATE_LIMIT);
        assert_non_null(strstr(err.message, "memory"));
    }
    /* step budget set by the caller */
    {
        wl_jinja_options o = wl_jinja_options_default();
        o.max_steps = 500;
        const char *src = "{% for i in range(1000) %}{{ i }}{% endfor %}";
        char *out;
        wandler_error err;
        assert_int_equal(render_opts(src, strlen(src), NULL, &o, &out, &err), WANDLER_ERR_TEMPLATE_LIMIT);
    }
}

static char *repeat(const char *a, int n, const char *mid, const char *b)
{
    size_t la = strlen(a), lm = strlen(mid), lb = strlen(b);
    char *s = malloc(la * (size_t)n + lm + lb * (size_t)n + 1), *p = s;
    for (int i = 0; i < n; i++, p += la) memcpy(p, a, la);
    memcpy(p, mid, lm);
    p += lm;
    for (int i = 0; i < n; i++, p += lb) memcpy(p, b, lb);
    *p = '\0';
    return s;
}

/* prefix + inner + suffix; frees inner. */
static char *wrap(const char *prefix, char *inner, const char *suffix)
{
    char *s = repeat(prefix, 1, inner, suffix);
    free(inner);
    return s;
}

static void expect_limit_src(char *src)
{
    expect_error(src, WANDLER_ERR_TEMPLATE_LIMIT, NULL);
    free(src);
}

static void test_deep_nesting_is_an_error_not_a_crash(void **state)
{
    (void)state;
    expect_limit_src(wrap("{{ ", repeat("(", 5000, "1", ")"), " }}"));
    expect_limit_src(wrap("{{ ", repeat("[", 5000, "1", "]"), " }}"));
    expect_limit_src(repeat("{% if true %}", 5000, "x", "{% endif %}"));
    expect_limit_src(repeat("{% for i in xs %}", 5000, "x", "{% endfor %}"));
    expect_limit_src(wrap("{{ ", repeat("not ", 20000, "x", ""), " }}"));
    expect_limit_src(wrap("{{ ", repeat("-", 20000, "1", ""), " }}"));
    expect_limit_src(wrap("{{ 1", repeat(" + 1", 20000, "", ""), " }}"));
    expect_limit_src(wrap("{{ s", repeat("|trim", 20000, "", ""), " }}"));
    expect_limit_src(wrap("{{ x", repeat(" if x else x", 5000, "", ""), " }}"));
    /* nested data built at run time */
    expect_error("{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
                 WANDLER_ERR_TEMPLATE_LIMIT, "nested too deeply", NULL);
    expect_error("{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}",
                 WANDLER_ERR_TEMPLATE_LIMIT, NULL);
    expect_error("{% set ns = namespace(x=()) %}{% for i in range(5000) %}{% set ns.x = (ns.x,) %}{% endfor %}{{ {ns.x: 1} }}",
                 WANDLER_ERR_TEMPLATE, "unhashable", NULL);
    /* a template too large to be a chat template */
    size_t big = (1 << 20) + 10;
    char *src = malloc(big);
    memset(src, 'a', big);
    wl_jinja_template *tpl;
    wandler_error err;
    assert_int_equal(wl_jinja_parse(src, big, &tpl, &err), WANDLER_ERR_TEMPLATE_LIMIT);
    free(src);
}

/* ---- UTF-8 --------------------------------------------------------------------------- */

static void test_invalid_utf8(void **state)
{
    (void)state;
    wl_jinja_template *tpl = NULL;
    wandler_error err;
    const char bad[] = "line 1\n{{ 'caf\xC3' }}";
    assert_int_equal(wl_jinja_parse(bad, sizeof bad - 1, &tpl, &err), WANDLER_ERR_BAD_UTF8);
    assert_null(tpl);
    assert_non_null(strstr(err.message, "line 2"));
    const char overlong[] = "\xC0\xAF";
    assert_int_equal(wl_jinja_parse(overlong, 2, &tpl, &err), WANDLER_ERR_BAD_UTF8);
    const char surrogate[] = "\xED\xA0\x80";
    assert_int_equal(wl_jinja_parse(surrogate, 3, &tpl, &err), WANDLER_ERR_BAD_UTF8);
    /* strings of the context must be UTF-8 */
    assert_null(wl_jinja_value_string("\xFF", 1));
    assert_null(wl_jinja_value_string("ab\xE2\x82", 4));
    wl_jinja_value *d = wl_jinja_value_dict();
    assert_int_equal(wl_jinja_dict_set(d, "k\xFF", wl_jinja_value_int(1)), WANDLER_ERR_INVALID_ARGUMENT);
    wl_jinja_value_free(d);
    /* a string escape naming a surrogate cannot make invalid text */
    expect_error("{{ '\\ud800' }}", WANDLER_ERR_TEMPLATE, "surrogate", NULL);
    /* NUL bytes are text like any other */
    const char nul[] = "a\0b{{ 'c' }}";
    char *out;
    assert_int_equal(render_opts(nul, sizeof nul - 1, NULL, NULL, &out, &err), WANDLER_OK);
    assert_memory_equal(out, "a\0bc", 4);
    free(out);
}

/* ---- API ----------------------------------------------------------------------------- */

static void test_value_api_and_arguments(void **state)
{
    (void)state;
    wandler_error err;
    wl_jinja_template *tpl = NULL;
    wl_buf out = {0};
    assert_int_equal(wl_jinja_parse(NULL, 3, &tpl, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_jinja_parse("{{ x }}", 7, NULL, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_jinja_parse("{{ x }}", 7, &tpl, &err), WANDLER_OK);
    assert_int_equal(wl_jinja_render(NULL, NULL, NULL, &out, &err), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_jinja_render(tpl, NULL, NULL, NULL, &err), WANDLER_ERR_INVALID_ARGUMENT);
    wl_jinja_value *notdict = wl_jinja_value_list();
    assert_int_equal(wl_jinja_render(tpl, notdict, NULL, &out, &err), WANDLER_ERR_INVALID_ARGUMENT);
    /* containers take their items over, also when they refuse them */
    assert_int_equal(wl_jinja_list_append(notdict, NULL), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_jinja_dict_set(notdict, "k", str("v")), WANDLER_ERR_INVALID_ARGUMENT);
    assert_int_equal(wl_jinja_list_append(NULL, str("v")), WANDLER_ERR_INVALID_ARGUMENT);
    wl_jinja_value_free(notdict);
    wl_jinja_value_free(NULL);

    /* every kind of value, nested, replaced, printed */
    wl_jinja_value *ctx = wl_jinja_value_dict(), *inner = wl_jinja_value_dict(), *list = wl_jinja_value_list();
    assert_int_equal(wl_jinja_list_append(list, wl_jinja_value_none()), WANDLER_OK);
    assert_int_equal(wl_jinja_list_append(list, wl_jinja_value_bool(0)), WANDLER_OK);
    assert_int_equal(wl_jinja_list_append(list, wl_jinja_value_float(2.5)), WANDLER_OK);
    assert_int_equal(wl_jinja_list_append(list, wl_jinja_value_int(-3)), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(inner, "list", list), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(inner, "list", str("replaced")), WANDLER_OK);
    assert_int_equal(wl_jinja_dict_set(ctx, "x", inner), WANDLER_OK);
    assert_int_equal(wl_jinja_render(tpl, ctx, NULL, &out, &err), WANDLER_OK);
    assert_string_equal(out.data, "{'list': 'replaced'}");
    /* a template renders many times, appending */
    assert_int_equal(wl_jinja_render(tpl, NULL, NULL, &out, &err), WANDLER_OK);
    assert_string_equal(out.data, "{'list': 'replaced'}");
    wl_jinja_value_free(ctx);
    wl_jinja_free(tpl);
    wl_jinja_free(NULL);

    /* a failed render leaves the output as it was */
    assert_int_equal(wl_jinja_parse("abc{{ 1/0 }}", 12, &tpl, &err), WANDLER_OK);
    assert_int_equal(wl_jinja_render(tpl, NULL, NULL, &out, &err), WANDLER_ERR_TEMPLATE);
    assert_string_equal(out.data, "{'list': 'replaced'}");
    wl_jinja_free(tpl);
    wl_buf_free(&out);

    wl_jinja_options d = wl_jinja_options_default();
    assert_int_equal(d.max_output, 16u << 20);
    assert_true(d.max_steps >= 1000000);
    assert_true(d.max_depth >= 100);
    assert_null(d.now);
}

/* Without an injected time, strftime_now() formats the current local time. */
static void test_strftime_now_uses_the_clock(void **state)
{
    (void)state;
    wl_jinja_options o = wl_jinja_options_default();
    const char *src = "{{ strftime_now('%Y') }}";
    char *out;
    wandler_error err;
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    assert_int_equal(render_opts(src, strlen(src), NULL, &o, &out, &err), WANDLER_OK);
    assert_int_equal(atoi(out), tm.tm_year + 1900);
    free(out);
}

/* Reference cycles (a namespace holding itself, closures) are freed at the end (LSan). */
static void test_cycles_do_not_leak(void **state)
{
    (void)state;
    char *out;
    wandler_error err;
    assert_int_equal(render("{% set ns = namespace() %}{% set ns.me = ns %}{% set ns.l = [ns, ns] %}ok", &out, &err), WANDLER_OK);
    assert_string_equal(out, "ok");
    free(out);
    assert_int_equal(render("{% set ns = namespace() %}{% for i in xs %}{% macro m() %}{{ i }}{% endmacro %}"
                            "{% set ns.m = m %}{% endfor %}{{ ns.m() }}", &out, &err), WANDLER_OK);
    free(out);
    assert_int_equal(render("{% macro a() %}{% endmacro %}{% set ns = namespace(f=a) %}{% macro b() %}{{ ns }}{% endmacro %}"
                            "{% set ns.g = b %}x", &out, &err), WANDLER_OK);
    free(out);
}

/* ---- threads ------------------------------------------------------------------------- */

typedef struct thread_job {
    const wl_jinja_template *tpl;
    const wl_jinja_value *ctx;
    const char *want;
    int failures;
} thread_job;

static void *render_many(void *arg)
{
    thread_job *job = arg;
    struct tm now = fixed_time();
    wl_jinja_options o = wl_jinja_options_default();
    o.now = &now;
    for (int i = 0; i < 200; i++) {
        wl_buf b = {0};
        wandler_error err;
        if (wl_jinja_render(job->tpl, job->ctx, &o, &b, &err) != WANDLER_OK || strcmp(b.data, job->want) != 0)
            job->failures++;
        wl_buf_free(&b);
    }
    return NULL;
}

/* One parsed template and one context rendered by several threads at once. */
static void test_concurrent_renders(void **state)
{
    (void)state;
    const char *src = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                      "<{{ m.role|upper }}>{{ m['content'] ~ '!' }}{% endfor %}{{ ns.n }} {{ strftime_now('%d %b') }}"
                      "{{ xs|map('string')|join(',') }}{{ d|tojson }}";
    wl_jinja_template *tpl;
    wandler_error err;
    assert_int_equal(wl_jinja_parse(src, strlen(src), &tpl, &err), WANDLER_OK);
    wl_jinja_value *ctx = make_context();
    thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].tpl = tpl;
        jobs[i].ctx = ctx;
        jobs[i].want = "<SYSTEM>Sys!<USER>Hi!<ASSISTANT>Yo!3 26 Jul1,2,3{\"a\": 1, \"b\": 2}";
        jobs[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, render_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    wl_jinja_value_free(ctx);
    wl_jinja_free(tpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renderings_match_jinja2),
        cmocka_unit_test(test_parse_errors_name_construct_and_line),
        cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_limits_stop_hostile_templates),
        cmocka_unit_test(test_deep_nesting_is_an_error_not_a_crash),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_value_api_and_arguments),
        cmocka_unit_test(test_strftime_now_uses_the_clock),
        cmocka_unit_test(test_cycles_do_not_leak),
        cmocka_unit_test(test_concurrent_renders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
