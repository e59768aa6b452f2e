#!/usr/bin/env python3
"""Writes benches/typical_3_screenshots.eml: the issue's "typical mail" — an Outlook-style
multipart with the form of Приложение 1 in text and HTML and three ~65 KB PNG screenshots
(about 200 KB in all). Deterministic (seeded). Used by `mailintake check --bench`."""
import base64, random, struct, zlib, pathlib

def png(seed, size):
    rnd = random.Random(seed)
    raw = bytes(rnd.getrandbits(8) for _ in range(size))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 256, 64, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b"")

form = """Добрый день!

Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра, ГБУЗС «Городская больница №1», +7 (8692) 55-12-34
ФИО пользователя, логин: Петров Пётр Петрович, ppetrov
Данные пациента: Сидоров С.С., № карты 123456
Последовательность выполняемых действий:
1. Регистратура → Расписание стандартное
2. Запись пациента к врачу-логопеду
Описание ошибки: Шаблона посещения для данной услуги не существует
Влияние: Малое
Приоритет: Высокий

Скриншоты во вложении.
"""
html = "<html><body>" + "".join(f"<p class=MsoNormal>{l}</p>" for l in form.splitlines()) + "</body></html>"
b = "----=_NextPart_000_0001_01DA0000.00000000"
parts = [
    f"From: \"Иванова Т.А.\" <t.ivanova@sev.gov.ru>\r\nTo: help@sevmiac.ru\r\n"
    f"Subject: =?utf-8?B?{base64.b64encode('Ошибка записи к логопеду'.encode()).decode()}?=\r\n"
    f"Date: Thu, 26 Nov 2026 10:00:00 +0300\r\nMessage-ID: <bench-typical@sev.gov.ru>\r\n"
    f"MIME-Version: 1.0\r\nX-Mailer: Microsoft Outlook 16.0\r\n"
    f"Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n",
    f"--{b}\r\nContent-Type: multipart/alternative; boundary=\"{b}alt\"\r\n\r\n"
    f"--{b}alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(form.encode()).decode().replace("\n", "\r\n") +
    f"\r\n--{b}alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(html.encode()).decode().replace("\n", "\r\n") + f"\r\n--{b}alt--\r\n",
]
for i in range(3):
    data = png(i, 66000)
    parts.append(
        f"--{b}\r\nContent-Type: image/png; name=\"screen{i+1}.png\"\r\n"
        f"Content-Disposition: attachment; filename=\"screen{i+1}.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data).decode().replace("\n", "\r\n") + "\r\n")
parts.append(f"--{b}--\r\n")
out = pathlib.Path(__file__).resolve().parent.parent / "benches" / "typical_3_screenshots.eml"
out.write_bytes("".join(parts).encode())
print(out, out.stat().st_size, "bytes")
