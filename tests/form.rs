//! The form of Приложение 1 read from realistic mail bodies (src/verdict/form.rs, rules/form.toml).
//!
//! Each case is a body and the fields expected from it; every field not listed must be `None`.
//! Special keys: "impact", "priority" (the raw values), "labels" ("0" = no form recognised).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailintake::verdict::form::{
    missing_recommended, missing_required, normalize_phone, normalize_phone_in, parse_form,
    strip_quoted, FormRules, RawFormRules,
};
use mailintake::verdict::{Applicant, FormFields};

fn rules() -> &'static FormRules {
    static RULES: OnceLock<FormRules> = OnceLock::new();
    RULES.get_or_init(|| {
        FormRules::from_toml(include_str!("../rules/form.toml")).expect("rules/form.toml compiles")
    })
}

struct Case {
    name: &'static str,
    body: &'static str,
    want: &'static [(&'static str, &'static str)],
}

const FULL_TEXT_FORM: &str = "Добрый день!

Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра, ГБУЗС «Городская больница №1», +7 (8692) 55-12-34
ФИО пользователя, логин: Петров Пётр Петрович, ppetrov
Данные пациента: Сидоров С.С., № карты 123456
Последовательность выполняемых действий: Регистратура → Расписание стандартное → При записи пациента к врачу-логопеду выходит ошибка
Описание ошибки: Шаблона посещения для данной услуги не существует

С уважением,
Иванова Т.А.";

const FULL_WANT: &[(&str, &str)] = &[
    ("applicant.full_name", "Иванова Татьяна Александровна"),
    ("applicant.position", "медицинская сестра"),
    ("applicant.organization", "ГБУЗС «Городская больница №1»"),
    ("applicant.phone", "+78692551234"),
    ("user.full_name", "Петров Пётр Петрович"),
    ("user.login", "ppetrov"),
    ("patient.name", "Сидоров С.С."),
    ("patient.card", "123456"),
    (
        "steps",
        "Регистратура → Расписание стандартное → При записи пациента к врачу-логопеду выходит ошибка",
    ),
    ("error_text", "Шаблона посещения для данной услуги не существует"),
];

const CASES: &[Case] = &[
    Case {
        name: "one_line_labels_full_form",
        body: FULL_TEXT_FORM,
        want: FULL_WANT,
    },
    Case {
        name: "applicant_line_unbalanced_quotes_in_organisation",
        body: "Данные о заявителе: Кузнецова Ольга Викторовна, старшая медицинская сестра, ГБУЗС «Городская больница №5 – «Центр охраны здоровья матери и ребенка», тел. 8 (8692) 48-21-07\nОписание ошибки: Не формируется направление",
        want: &[
            ("applicant.full_name", "Кузнецова Ольга Викторовна"),
            ("applicant.position", "старшая медицинская сестра"),
            (
                "applicant.organization",
                "ГБУЗС «Городская больница №5 – «Центр охраны здоровья матери и ребенка»",
            ),
            ("applicant.phone", "+78692482107"),
            ("error_text", "Не формируется направление"),
        ],
    },
    Case {
        name: "applicant_line_organisation_with_commas",
        body: "Данные о заявителе: Смирнов А.В., инженер-программист, ГБУЗС «Городская больница № 9», поликлиническое отделение, +7 978 123-45-67\nОшибка: Не открывается ЭМК",
        want: &[
            ("applicant.full_name", "Смирнов А.В."),
            ("applicant.position", "инженер-программист"),
            (
                "applicant.organization",
                "ГБУЗС «Городская больница № 9», поликлиническое отделение",
            ),
            ("applicant.phone", "+79781234567"),
            ("error_text", "Не открывается ЭМК"),
        ],
    },
    Case {
        name: "applicant_line_phone_in_the_middle_and_position_of_two_chunks",
        body: "Заявитель: Белова Н.Н., тел. 55-40-11, заведующая отделением, врач-терапевт, ГБУЗС «Городская больница №2»\nШаги: Поликлиника → Журнал",
        want: &[
            ("applicant.full_name", "Белова Н.Н."),
            ("applicant.position", "заведующая отделением, врач-терапевт"),
            ("applicant.organization", "ГБУЗС «Городская больница №2»"),
            ("applicant.phone", "+78692554011"),
            ("steps", "Поликлиника → Журнал"),
        ],
    },
    Case {
        name: "applicant_line_without_org_prefix_falls_back_to_second_chunk",
        body: "Данные заявителя: Орлов Игорь Петрович, системный администратор, Севастопольский городской онкологический диспансер им. А.А. Задорожного, 8-978-765-43-21\nОписание ошибки: нет доступа",
        want: &[
            ("applicant.full_name", "Орлов Игорь Петрович"),
            ("applicant.position", "системный администратор"),
            (
                "applicant.organization",
                "Севастопольский городской онкологический диспансер им. А.А. Задорожного",
            ),
            ("applicant.phone", "+79787654321"),
            ("error_text", "нет доступа"),
        ],
    },
    Case {
        name: "applicant_line_name_glued_to_position",
        body: "Данные о заявителе: Иванова Т.А. медсестра, ГБУЗС «ГБ №1», 55-12-34 доб. 123\nОшибка: сбой",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "сбой"),
        ],
    },
    Case {
        name: "applicant_line_with_email_and_trailing_dot",
        body: "Данные о заявителе: Иванова Т.А., медсестра, ГБУЗС «Городская больница №1», тел. 55-12-34, ivanova@sev.gov.ru.\nОшибка: сбой",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «Городская больница №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "сбой"),
        ],
    },
    Case {
        name: "web_mail_form_with_parenthesised_login_and_birth_year",
        body: "Добрый день!\nПрошу помочь. При записи пациента выходит ошибка.\nДанные о заявителе: Петренко Анна Сергеевна, врач-педиатр участковый, ГБУЗС \"Городская детская больница\", моб. 8978-111-22-33\nПользователь: Петренко А.С. (petrenko_as)\nПациент: Ковалёв Д.И., 2015 г.р., карта 4578/15\nШаги: \n1) Открыть АРМ врача\n2) Выбрать пациента\n3) Нажать \"Записать\"\nОшибка: \"Не найден шаблон\"\nВлияние: Большое\nПриоритет: Высокий",
        want: &[
            ("applicant.full_name", "Петренко Анна Сергеевна"),
            ("applicant.position", "врач-педиатр участковый"),
            ("applicant.organization", "ГБУЗС \"Городская детская больница\""),
            ("applicant.phone", "+79781112233"),
            ("user.full_name", "Петренко А.С."),
            ("user.login", "petrenko_as"),
            ("patient.name", "Ковалёв Д.И."),
            ("patient.card", "4578/15"),
            (
                "steps",
                "1) Открыть АРМ врача\n2) Выбрать пациента\n3) Нажать \"Записать\"",
            ),
            ("error_text", "\"Не найден шаблон\""),
            ("impact", "Большое"),
            ("priority", "Высокий"),
        ],
    },
    Case {
        name: "applicant_line_organisation_first",
        body: "Данные о заявителе: ГБУЗС «Городская больница №1», медсестра, Иванова Т.А., 55-12-34",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «Городская больница №1»"),
            ("applicant.phone", "+78692551234"),
        ],
    },
    Case {
        name: "applicant_line_separated_by_dashes",
        body: "Данные о заявителе – Иванова Т.А. – медсестра – ГБУЗС ГБ №1 – 55-12-34",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС ГБ №1"),
            ("applicant.phone", "+78692551234"),
        ],
    },
    Case {
        name: "applicant_line_two_phones_with_notes",
        body: "Данные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 8 978 123 45 67 (мобильный), +7 (8692) 55-12-34 доб. 2",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+79781234567"),
        ],
    },
    Case {
        name: "applicant_line_initials_first_and_six_digit_phone",
        body: "Данные о заявителе: Т.А. Иванова, медсестра процедурного кабинета, ГБУЗС ГБ №1, 556677",
        want: &[
            ("applicant.full_name", "Т.А. Иванова"),
            ("applicant.position", "медсестра процедурного кабинета"),
            ("applicant.organization", "ГБУЗС ГБ №1"),
            ("applicant.phone", "+78692556677"),
        ],
    },
    Case {
        name: "patient_name_stops_at_digits_and_emk_card",
        body: "Данные пациента: ИВАНОВ ИВАН ИВАНОВИЧ 01.01.1950 г.р. № ЭМК 123-456",
        want: &[
            ("patient.name", "ИВАНОВ ИВАН ИВАНОВИЧ"),
            ("patient.card", "123-456"),
        ],
    },
    Case {
        name: "card_label_without_digits_is_absent",
        body: "№ карты: не заведена\nЛогин: SEV\\petrov",
        want: &[("user.login", "SEV\\petrov"), ("labels", "2")],
    },
    Case {
        name: "sub_labels_with_tabs_in_capitals",
        body: "ДАННЫЕ О ЗАЯВИТЕЛЕ\nФИО:\tИванова Т.А.\nДОЛЖНОСТЬ:\tмедсестра\nМО:\tГБУЗС ГБ №1\nТЕЛЕФОН:\t55-12-34\nПОСЛЕДОВАТЕЛЬНОСТЬ ВЫПОЛНЯЕМЫХ ДЕЙСТВИЙ:\tРегистратура → Расписание",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС ГБ №1"),
            ("applicant.phone", "+78692551234"),
            ("steps", "Регистратура → Расписание"),
        ],
    },
    Case {
        name: "signature_with_labelled_phone_is_not_a_form",
        body: "Во вложении заявка.\n\nС уважением,\nИванова Т.А.\nДолжность: медсестра\nТел.: 8 (8692) 55-12-34",
        want: &[("labels", "0")],
    },
    Case {
        name: "form_kept_in_the_signature_is_read",
        body: "Не печатается талон.\n\nС уважением,\nДанные о заявителе:\nФИО: Иванова Т.А.\nМО: ГБУЗС «ГБ №1»\nТел.: 55-12-34",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
        ],
    },
    Case {
        name: "label_alone_then_numbered_steps",
        body: "Последовательность выполняемых действий:\n1. Открыть «Регистратура».   \n2. Выбрать «Расписание стандартное».\n3. Записать пациента к врачу-логопеду.\n\nОписание ошибки:\nШаблона посещения для данной услуги не существует\n",
        want: &[
            (
                "steps",
                "1. Открыть «Регистратура».\n2. Выбрать «Расписание стандартное».\n3. Записать пациента к врачу-логопеду.",
            ),
            ("error_text", "Шаблона посещения для данной услуги не существует"),
        ],
    },
    Case {
        name: "multiline_error_keeps_inner_blank_line_once",
        body: "Текст ошибки:\nException in module Registry\n   at Schedule.Save()\n\n\n\n   at Form.Submit()\nСкриншоты: во вложении",
        want: &[(
            "error_text",
            "Exception in module Registry\n   at Schedule.Save()\n\n   at Form.Submit()",
        )],
    },
    Case {
        name: "inline_value_ends_at_blank_line_before_a_remark",
        body: "Описание ошибки: Пользователь не имеет прав на выполнение операции\n  (код 403)\n\nВидео во вложении.\n\n--\nОтправлено из мобильной Почты Mail.ru",
        want: &[(
            "error_text",
            "Пользователь не имеет прав на выполнение операции\n  (код 403)",
        )],
    },
    Case {
        name: "format_flowed_soft_breaks_are_joined",
        body: "Данные о заявителе: Кравченко Елена Николаевна, медицинский \r\nрегистратор, ГБУЗС «Центральная городская больница», 8 (8692) 54-32-10\r\nДанные пациента: Лысенко Г.Н., ЦГБ-017734\r\nПоследовательность выполняемых действий: ЭМК пациента → Протокол \r\nосмотра → Подписать ЭП → Выбрать сертификат руководителя → Нажать \r\n«Подписать и отправить в РЭМД»\r\nОписание ошибки: Ошибка при подписании ЭМД: сертификат не найден в \r\nхранилище «Личное» текущего пользователя\r\n2. второй пункт\r\n",
        want: &[
            ("applicant.full_name", "Кравченко Елена Николаевна"),
            ("applicant.position", "медицинский регистратор"),
            ("applicant.organization", "ГБУЗС «Центральная городская больница»"),
            ("applicant.phone", "+78692543210"),
            ("patient.name", "Лысенко Г.Н."),
            ("patient.card", "ЦГБ-017734"),
            (
                "steps",
                "ЭМК пациента → Протокол осмотра → Подписать ЭП → Выбрать сертификат руководителя → Нажать «Подписать и отправить в РЭМД»",
            ),
            (
                "error_text",
                "Ошибка при подписании ЭМД: сертификат не найден в хранилище «Личное» текущего пользователя\n2. второй пункт",
            ),
        ],
    },
    Case {
        name: "regulation_wording_of_sub_labels",
        body: "Данные о заявителе:\r\nФИО: Шевченко Наталья Владимировна\r\nДолжность обратившегося: заведующая регистратурой\r\nНаименование МО пользователя: ГБУЗС «Городская больница №6»\r\nКонтактный номер телефона: +7 (8692) 53-00-17\r\nФИО пользователя: Ковальчук Виктор Петрович\r\nЛогин, под которым воспроизводится ошибка: kovalchuk_vp\r\nФамилия, инициалы пациента: Андреева М.К.\r\n№ карты: 98114\r\nОписание ошибки: Нет доступных слотов для записи\r\n",
        want: &[
            ("applicant.full_name", "Шевченко Наталья Владимировна"),
            ("applicant.position", "заведующая регистратурой"),
            ("applicant.organization", "ГБУЗС «Городская больница №6»"),
            ("applicant.phone", "+78692530017"),
            ("user.full_name", "Ковальчук Виктор Петрович"),
            ("user.login", "kovalchuk_vp"),
            ("patient.name", "Андреева М.К."),
            ("patient.card", "98114"),
            ("error_text", "Нет доступных слотов для записи"),
        ],
    },
    Case {
        name: "sub_labels_under_headings",
        body: "Данные о заявителе:\nФИО: Иванова Т.А.\nДолжность: медсестра\nМО: ГБУЗС «Городская больница №1»\nТелефон: 55-12-34\n\nДанные о пользователе:\nФИО: Петров П.П.\nЛогин: petrov_pp\nДолжность: врач-терапевт\n\nДанные пациента:\nФамилия: Сидоров С.С.\n№ карты: 123456\n\nОписание ошибки: Не удалось сохранить протокол осмотра",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «Городская больница №1»"),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "Петров П.П."),
            ("user.login", "petrov_pp"),
            ("patient.name", "Сидоров С.С."),
            ("patient.card", "123456"),
            ("error_text", "Не удалось сохранить протокол осмотра"),
        ],
    },
    Case {
        name: "sub_labels_without_heading_mean_the_applicant",
        body: "Здравствуйте.\nФИО: Гончаренко Виктория Сергеевна\nДолжность: регистратор\nНаименование МО: ГБУЗС «Городская больница №4»\nКонтактный телефон: +7 (978) 000-11-22\nОшибка: не печатается талон",
        want: &[
            ("applicant.full_name", "Гончаренко Виктория Сергеевна"),
            ("applicant.position", "регистратор"),
            ("applicant.organization", "ГБУЗС «Городская больница №4»"),
            ("applicant.phone", "+79780001122"),
            ("error_text", "не печатается талон"),
        ],
    },
    Case {
        name: "labels_in_capitals",
        body: "ДАННЫЕ О ЗАЯВИТЕЛЕ: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\nФИО ПОЛЬЗОВАТЕЛЯ: ПЕТРОВ П.П.\nЛОГИН: PETROV\nОПИСАНИЕ ОШИБКИ: ОШИБКА 500",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "ПЕТРОВ П.П."),
            ("user.login", "PETROV"),
            ("error_text", "ОШИБКА 500"),
        ],
    },
    Case {
        name: "dash_tab_and_em_dash_separators",
        body: "Данные о заявителе — Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\nФИО пользователя, логин - Петров П.П., petrov\nДанные пациента\tСидоров С.С., карта 77/2026\nОписание ошибки – Ошибка 500",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "Петров П.П."),
            ("user.login", "petrov"),
            ("patient.name", "Сидоров С.С."),
            ("patient.card", "77/2026"),
            ("error_text", "Ошибка 500"),
        ],
    },
    Case {
        name: "bold_markers_and_bullets_from_web_mail",
        body: "**Данные о заявителе:** Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\n* **ФИО пользователя**: Петров П.П.\n1. Данные пациента: Сидоров С.С., № карты 123456\n- Описание ошибки: Ошибка 500\n• Приоритет: Высокий",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "Петров П.П."),
            ("patient.name", "Сидоров С.С."),
            ("patient.card", "123456"),
            ("error_text", "Ошибка 500"),
            ("priority", "Высокий"),
        ],
    },
    Case {
        name: "label_with_hint_in_parentheses",
        body: "Данные о заявителе (ФИО, должность, МО, телефон): Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\nОписание ошибки (текст по кнопке «Подробнее»): NullReferenceException",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "NullReferenceException"),
        ],
    },
    Case {
        name: "outlook_table_html2text_wide",
        body: "Добрый день!\n\n───────────────────────────────────────┬──────────────────────────────────────────────\n**Данные о заявителе**                 │Иванова Татьяна Александровна, медицинская сестра, ГБУЗС «Городская больница №5 – «Центр охраны здоровья матери и ребенка», +7 (8692) 55-12-34\n───────────────────────────────────────┼──────────────────────────────────────────────\nФИО пользователя, логин                │Петров Пётр Петрович, ppetrov\n───────────────────────────────────────┼──────────────────────────────────────────────\nДанные пациента                        │Сидоров С.С., № карты 123456\n───────────────────────────────────────┼──────────────────────────────────────────────\nПоследовательность выполняемых действий│1. Регистратура\n                                       │2. Расписание стандартное\n                                       │3. При записи пациента выходит ошибка\n───────────────────────────────────────┼──────────────────────────────────────────────\nОписание ошибки                        │Текст\n                                       │\n                                       │второй абзац\n───────────────────────────────────────┴──────────────────────────────────────────────\n\nС уважением,\nИванова",
        want: &[
            ("applicant.full_name", "Иванова Татьяна Александровна"),
            ("applicant.position", "медицинская сестра"),
            (
                "applicant.organization",
                "ГБУЗС «Городская больница №5 – «Центр охраны здоровья матери и ребенка»",
            ),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "Петров Пётр Петрович"),
            ("user.login", "ppetrov"),
            ("patient.name", "Сидоров С.С."),
            ("patient.card", "123456"),
            (
                "steps",
                "1. Регистратура\n2. Расписание стандартное\n3. При записи пациента выходит ошибка",
            ),
            ("error_text", "Текст\n\nвторой абзац"),
        ],
    },
    Case {
        name: "outlook_table_html2text_narrow_wrapped_cells",
        body: "Добрый день!\n\n────────────────┬───────────────────────────────────────────────────────────────\n**Данные о      │Иванова Татьяна Александровна, медицинская сестра, ГБУЗС       \nзаявителе**     │«Городская больница №5 – «Центр охраны здоровья матери и       \n                │ребенка», +7 (8692) 55-12-34                                   \n────────────────┼───────────────────────────────────────────────────────────────\nФИО             │Петров Пётр Петрович, ppetrov                                  \nпользователя,   │                                                               \nлогин           │                                                               \n────────────────┼───────────────────────────────────────────────────────────────\nДанные пациента │Сидоров С.С., № карты 123456                                   \n────────────────┼───────────────────────────────────────────────────────────────\nПоследовательнос│1. Регистратура                                                \nть выполняемых  │2. Расписание стандартное                                      \nдействий        │3. При записи пациента к врачу-логопеду выходит ошибка \"Шаблона\n                │посещения для данной услуги не существует\"                     \n────────────────┼───────────────────────────────────────────────────────────────\nОписание ошибки │Текст                                                          \n                │                                                               \n                │второй абзац                                                   \n────────────────┴───────────────────────────────────────────────────────────────\n",
        want: &[
            ("applicant.full_name", "Иванова Татьяна Александровна"),
            ("applicant.position", "медицинская сестра"),
            (
                "applicant.organization",
                "ГБУЗС «Городская больница №5 – «Центр охраны здоровья матери и ребенка»",
            ),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "Петров Пётр Петрович"),
            ("user.login", "ppetrov"),
            ("patient.name", "Сидоров С.С."),
            ("patient.card", "123456"),
            (
                "steps",
                "1. Регистратура\n2. Расписание стандартное\n3. При записи пациента к врачу-логопеду выходит ошибка \"Шаблона посещения для данной услуги не существует\"",
            ),
            ("error_text", "Текст\n\nвторой абзац"),
        ],
    },
    Case {
        name: "html2text_three_column_table_narrow_with_quoted_header_below",
        body: "Добрый день. Заявка:\n\n─┬──────────────────┬───────────────────────────────────────────────────────────\n№│Поле              │Значение                                                   \n─┼──────────────────┼───────────────────────────────────────────────────────────\n1│Данные о заявителе│Иванова Татьяна Александровна, медицинская сестра, ГБУЗС   \n │                  │«Городская больница № 9», поликлиническое отделение, +7 978\n │                  │123-45-67                                                  \n─┼──────────────────┼───────────────────────────────────────────────────────────\n2│ФИО пользователя, │Петров Пётр Петрович                                       \n │логин             │ppetrov                                                    \n─┼──────────────────┼───────────────────────────────────────────────────────────\n3│Данные пациента   │нет                                                        \n─┼──────────────────┼───────────────────────────────────────────────────────────\n4│Последовательность│1. Регистратура                                            \n │выполняемых       │2. Расписание                                              \n │действий          │                                                           \n─┼──────────────────┼───────────────────────────────────────────────────────────\n5│Описание ошибки   │Ошибка соединения с сервером                               \n─┴──────────────────┴───────────────────────────────────────────────────────────\n**От:** help@sevmiac.ru\n**Отправлено:** 25 ноября 2026 г. 9:00\nДанные пациента: Старый С.С.\n\n",
        want: &[
            ("applicant.full_name", "Иванова Татьяна Александровна"),
            ("applicant.position", "медицинская сестра"),
            (
                "applicant.organization",
                "ГБУЗС «Городская больница № 9», поликлиническое отделение",
            ),
            ("applicant.phone", "+79781234567"),
            ("user.full_name", "Петров Пётр Петрович"),
            ("user.login", "ppetrov"),
            ("steps", "1. Регистратура\n2. Расписание"),
            ("error_text", "Ошибка соединения с сервером"),
            ("labels", "5"),
        ],
    },
    Case {
        name: "html2text_table_with_sub_labels_in_value_cell",
        body: "─────────────────┬──────────────────────────────\nДанные о заявителе│ФИО: Иванова Т.А.\n                 │Должность: медсестра\n                 │МО: ГБУЗС «ГБ №1»\n                 │Телефон: 8 (8692) 55-12-34\n─────────────────┼──────────────────────────────\nОписание ошибки  │Ошибка 500\n─────────────────┴──────────────────────────────",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "Ошибка 500"),
        ],
    },
    Case {
        name: "outlook_plain_text_table_with_tabs",
        body: "Данные о заявителе\tИванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\r\nФИО пользователя, логин\tПетров П.П., petrov\r\nДанные пациента\tСидоров С.С., № карты 123456\r\nПоследовательность выполняемых действий\tРегистратура → Расписание\r\nОписание ошибки\tОшибка 500\r\nСкриншоты\tво вложении\r\n",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "Петров П.П."),
            ("user.login", "petrov"),
            ("patient.name", "Сидоров С.С."),
            ("patient.card", "123456"),
            ("steps", "Регистратура → Расписание"),
            ("error_text", "Ошибка 500"),
        ],
    },
    Case {
        name: "outlook_plain_text_table_label_line_then_value_line",
        body: "Данные о заявителе\n\nИванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\n\nФИО пользователя, логин\n\nПетров П.П., petrov\n\nДанные пациента\n\nСидоров С.С., № карты 123456\n\nПоследовательность выполняемых действий\n\nРегистратура → Расписание\n\nОписание ошибки\n\nОшибка 500\n",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "Петров П.П."),
            ("user.login", "petrov"),
            ("patient.name", "Сидоров С.С."),
            ("patient.card", "123456"),
            ("steps", "Регистратура → Расписание"),
            ("error_text", "Ошибка 500"),
        ],
    },
    Case {
        name: "markdown_pipe_table",
        body: "| Поле | Значение |\n|---|---|\n| Данные о заявителе | Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34 |\n| Описание ошибки | Ошибка 500 |",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "Ошибка 500"),
        ],
    },
    Case {
        name: "applicant_heading_alone_one_item_per_line",
        body: "Данные о заявителе:\nИванова Татьяна Александровна\nмедицинская сестра\nГБУЗС «Городская больница №1»\n+7 (8692) 55-12-34\n\nОписание ошибки: сбой",
        want: &[
            ("applicant.full_name", "Иванова Татьяна Александровна"),
            ("applicant.position", "медицинская сестра"),
            ("applicant.organization", "ГБУЗС «Городская больница №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "сбой"),
        ],
    },
    Case {
        name: "applicant_line_hard_wrapped_by_thunderbird",
        body: "Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра,\nГБУЗС «Городская больница №1», +7 (8692) 55-12-34\nОписание ошибки: сбой",
        want: &[
            ("applicant.full_name", "Иванова Татьяна Александровна"),
            ("applicant.position", "медицинская сестра"),
            ("applicant.organization", "ГБУЗС «Городская больница №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "сбой"),
        ],
    },
    Case {
        name: "free_text_after_short_applicant_line_is_not_appended",
        body: "Данные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\nПрошу срочно помочь.\nОшибка: сбой",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "сбой"),
        ],
    },
    Case {
        name: "phone_mobile_with_spaces",
        body: "Телефон: +7 978 123-45-67",
        want: &[("applicant.phone", "+79781234567")],
    },
    Case {
        name: "phone_eight_with_city_code_in_brackets",
        body: "Тел.: 8 (8692) 55-12-34",
        want: &[("applicant.phone", "+78692551234")],
    },
    Case {
        name: "phone_city_code_in_brackets_without_eight",
        body: "Контактный телефон: (8692) 55-12-34",
        want: &[("applicant.phone", "+78692551234")],
    },
    Case {
        name: "phone_compact_with_brackets",
        body: "Телефон — +7(978)1234567",
        want: &[("applicant.phone", "+79781234567")],
    },
    Case {
        name: "phone_eleven_digits",
        body: "Телефон: 89781234567",
        want: &[("applicant.phone", "+79781234567")],
    },
    Case {
        name: "phone_local_six_digits_with_space_separator",
        body: "Тел. 55-12-34",
        want: &[("applicant.phone", "+78692551234")],
    },
    Case {
        name: "phone_with_extension",
        body: "Телефон: 8 (8692) 55-12-34 доб. 123",
        want: &[("applicant.phone", "+78692551234")],
    },
    Case {
        name: "phone_unreadable_kept_as_written",
        body: "Телефон: вн. 12-34",
        want: &[("applicant.phone", "вн. 12-34")],
    },
    Case {
        name: "phone_without_digits_is_absent",
        body: "Телефон: уточню позже",
        want: &[("labels", "1")],
    },
    Case {
        name: "reply_thanks_above_outlook_quoted_form",
        body: "Спасибо!\n\nС уважением, Иванова Т.А.\n\n________________________________\nОт: help@sevmiac.ru <help@sevmiac.ru>\nОтправлено: 26 ноября 2026 г. 10:15\nКому: Иванова Т.А.\nТема: RE: Не работает расписание\n\nДанные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\nОписание ошибки: Ошибка 500",
        want: &[("labels", "0")],
    },
    Case {
        name: "reply_thanks_above_outlook_html_quoted_form_bold_headers",
        body: "спасибо\n\n**From:** Иванова Т.А. [mailto:ivanova@sev.gov.ru]\n**Sent:** Thursday, November 26, 2026 10:15 AM\n**To:** help@sevmiac.ru\n\nДанные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34",
        want: &[("labels", "0")],
    },
    Case {
        name: "thunderbird_reply_with_quoted_form",
        body: "Добрый день, ошибка повторилась.\n\n26.11.2026 10:15, Иванова Т.А. пишет:\n> Данные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\n> Описание ошибки: Ошибка 500\n",
        want: &[("labels", "0")],
    },
    Case {
        name: "gmail_yandex_attribution_with_address",
        body: "Дополняю: логин тот же.\n\nЧт, 26 нояб. 2026 г. в 10:15, Иванова <ivanova@sev.gov.ru>:\n\nДанные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\nОписание ошибки: Ошибка 500",
        want: &[("labels", "0")],
    },
    Case {
        name: "original_message_separator",
        body: "Ошибка: снова не работает печать\n\n-----Original Message-----\nFrom: Иванова\nДанные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34",
        want: &[("error_text", "снова не работает печать")],
    },
    Case {
        name: "russian_original_message_separator",
        body: "Описание ошибки: снова\n-----Исходное сообщение-----\nДанные пациента: Сидоров С.С., № карты 1",
        want: &[("error_text", "снова")],
    },
    Case {
        name: "forwarded_message_is_cut",
        body: "Пересылаю.\n\n-------- Пересылаемое сообщение --------\nТема: заявка\nДанные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34",
        want: &[("labels", "0")],
    },
    Case {
        name: "gmail_forwarded_message_is_cut",
        body: "FYI\n---------- Forwarded message ---------\nОт: Иванова <ivanova@sev.gov.ru>\nОписание ошибки: x",
        want: &[("labels", "0")],
    },
    Case {
        name: "the_bat_quote_header",
        body: "Здравствуйте.\n\nВы писали 26 ноября 2026 г., 10:15:\n\nОписание ошибки: старая ошибка",
        want: &[("labels", "0")],
    },
    Case {
        name: "new_form_on_top_old_quoted_form_below_does_not_fill_gaps",
        body: "Данные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\nОписание ошибки: Новая ошибка\n\n26.11.2026 10:15, СТП пишет:\n> Данные пациента: Сидоров С.С., № карты 123456\n> ФИО пользователя, логин: Петров П.П., petrov\n",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "Новая ошибка"),
        ],
    },
    Case {
        name: "bottom_posting_keeps_new_text_below_the_quote",
        body: "26.11.2026 10:15, help@sevmiac.ru пишет:\n> Уточните, пожалуйста, данные пациента.\n\nДанные пациента: Сидоров С.С., № карты 123456\n",
        want: &[("patient.name", "Сидоров С.С."), ("patient.card", "123456")],
    },
    Case {
        name: "signature_cut_at_dash_dash_space",
        body: "Описание ошибки: Ошибка 500\n\n-- \nИванова Т.А.\nТелефон: 8-978-000-00-00\nГБУЗС «ГБ №1»",
        want: &[("error_text", "Ошибка 500")],
    },
    Case {
        name: "phone_client_footer_is_dropped",
        body: "Описание ошибки: Ошибка 500\n\nОтправлено из мобильной Почты Mail.ru",
        want: &[("error_text", "Ошибка 500")],
    },
    Case {
        name: "sent_from_iphone_footer_is_dropped",
        body: "Ошибка:\nНе входит в систему\nSent from my iPhone",
        want: &[("error_text", "Не входит в систему")],
    },
    Case {
        name: "see_attachment_is_not_a_form",
        body: "см. вложение",
        want: &[("labels", "0")],
    },
    Case {
        name: "greeting_with_attachment_is_not_a_form",
        body: "Добрый день! Во вложении заявка.\n\nС уважением,\nИванова Т.А.\nтел. 55-12-34",
        want: &[("labels", "0")],
    },
    Case {
        name: "sentence_starting_with_a_label_word_is_not_a_label",
        body: "Ошибка возникает при записи пациента к врачу.\nПользователь не может войти в систему.\nТелефон не отвечает.",
        want: &[("labels", "0")],
    },
    Case {
        name: "hyphenated_word_is_not_label_and_dash",
        body: "Карта-схема отделения не открывается.\nДействия-то выполнены верно.",
        want: &[("labels", "0")],
    },
    Case {
        name: "hyphen_separators_with_spaces",
        body: "ФИО -Петрова А.А.\nДолжность- регистратор\nМО -\nЛогин - petrova",
        want: &[
            ("applicant.full_name", "Петрова А.А."),
            ("applicant.position", "регистратор"),
            ("user.login", "petrova"),
            ("labels", "4"),
        ],
    },
    Case {
        name: "impact_and_priority_lines",
        body: "Описание ошибки: Не работает МИС во всей поликлинике\nВлияние: Блокирующий\nПриоритет: Неотложный.",
        want: &[
            ("error_text", "Не работает МИС во всей поликлинике"),
            ("impact", "Блокирующий"),
            ("priority", "Неотложный"),
        ],
    },
    Case {
        name: "impact_and_priority_alone_are_not_a_form",
        body: "Приоритет: высокий\nВлияние: большое",
        want: &[("labels", "0"), ("impact", "большое"), ("priority", "высокий")],
    },
    Case {
        name: "yo_and_ye_in_labels",
        body: "Учётная запись: petrov\nФИО пользователя: Пётр Семёнов\nОписание ошибкИ: Всё сломалось",
        want: &[
            ("user.login", "petrov"),
            ("user.full_name", "Пётр Семёнов"),
            ("error_text", "Всё сломалось"),
        ],
    },
    Case {
        name: "nbsp_and_zero_width_characters",
        body: "Данные\u{a0}о\u{a0}заявителе:\u{200b} Иванова\u{a0}Т.А., медсестра, ГБУЗС\u{a0}«ГБ\u{a0}№1», 55\u{2011}12\u{2011}34\n\u{feff}Описание\u{a0}ошибки:\u{a0}Ошибка\u{200d} 500",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "Ошибка 500"),
        ],
    },
    Case {
        name: "placeholders_count_as_absent",
        body: "ФИО пользователя, логин: -\nДанные пациента: нет\nОписание ошибки: н/д\nПоследовательность выполняемых действий: —",
        want: &[("labels", "4")],
    },
    Case {
        name: "unfilled_template_hints_count_as_absent",
        body: "Данные о заявителе: ФИО, должность обратившегося, наименование МО пользователя, контактный номер телефона;\nФИО пользователя, логин: ФИО пользователя, логин под которым воспроизводится ошибка\nДанные пациента: Фамилия, инициалы пациента, № карты\nОписание ошибки: Текст из ошибки по кнопке «Подробнее»",
        want: &[("labels", "4")],
    },
    Case {
        name: "user_same_as_applicant",
        body: "Данные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\nФИО пользователя, логин: тот же, логин ivanova_ta\nОшибка: сбой",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("user.full_name", "Иванова Т.А."),
            ("user.login", "ivanova_ta"),
            ("error_text", "сбой"),
        ],
    },
    Case {
        name: "user_line_with_login_keyword",
        body: "Пользователь: Петров П.П., логин petrov_pp",
        want: &[("user.full_name", "Петров П.П."), ("user.login", "petrov_pp")],
    },
    Case {
        name: "user_line_login_in_parentheses",
        body: "ФИО пользователя: Петров Пётр Петрович (логин: p.petrov)",
        want: &[
            ("user.full_name", "Петров Пётр Петрович"),
            ("user.login", "p.petrov"),
        ],
    },
    Case {
        name: "user_line_cyrillic_login_after_keyword",
        body: "Данные о пользователе: Петрова А.А., учетная запись ПетроваАА",
        want: &[("user.full_name", "Петрова А.А."), ("user.login", "ПетроваАА")],
    },
    Case {
        name: "login_label_with_space_separator",
        body: "Логин petrov\nЛогин и пароль верные.",
        want: &[("user.login", "petrov")],
    },
    Case {
        name: "patient_card_number_sign_and_slash",
        body: "Пациент: Сидоров С.С., карта № 12/345",
        want: &[("patient.name", "Сидоров С.С."), ("patient.card", "12/345")],
    },
    Case {
        name: "patient_with_birth_year_and_outpatient_card",
        body: "Данные пациента: Сидоров С.С., 1956 г.р., № амб. карты 4521",
        want: &[("patient.name", "Сидоров С.С."), ("patient.card", "4521")],
    },
    Case {
        name: "patient_bare_number",
        body: "Данные пациента: Сидорова А.Б. 000123",
        want: &[("patient.name", "Сидорова А.Б."), ("patient.card", "000123")],
    },
    Case {
        name: "patient_card_sub_labels",
        body: "Пациент:\nФИО пациента: Сидоров Сергей\nНомер карты: А-2026/15\n",
        want: &[("patient.name", "Сидоров Сергей"), ("patient.card", "А-2026/15")],
    },
    Case {
        name: "closing_line_ends_the_steps",
        body: "Действия:\nОткрыть журнал\nНажать «Сохранить»\n\nС уважением,\nИванова Т.А.\nГБУЗС «ГБ №1»",
        want: &[("steps", "Открыть журнал\nНажать «Сохранить»")],
    },
    Case {
        name: "problem_description_counts_as_steps",
        body: "Описание проблемы: при открытии журнала вызовов появляется пустое окно",
        want: &[(
            "steps",
            "при открытии журнала вызовов появляется пустое окно",
        )],
    },
    Case {
        name: "steps_inline_and_continued_on_next_lines",
        body: "Шаги воспроизведения: Регистратура → Расписание\n→ Выбор врача → Запись\nСкриншот: приложен\nТема: ошибка записи",
        want: &[(
            "steps",
            "Регистратура → Расписание\n→ Выбор врача → Запись",
        )],
    },
    Case {
        name: "crlf_line_endings",
        body: "Данные о заявителе: Иванова Т.А., медсестра, ГБУЗС «ГБ №1», 55-12-34\r\nОписание ошибки:\r\nстрока 1\r\nстрока 2\r\n",
        want: &[
            ("applicant.full_name", "Иванова Т.А."),
            ("applicant.position", "медсестра"),
            ("applicant.organization", "ГБУЗС «ГБ №1»"),
            ("applicant.phone", "+78692551234"),
            ("error_text", "строка 1\nстрока 2"),
        ],
    },
    Case {
        name: "first_value_wins",
        body: "Описание ошибки: первая\nОписание ошибки: вторая",
        want: &[("error_text", "первая")],
    },
    Case {
        name: "heading_alone_opens_user_section_for_sub_labels",
        body: "ФИО пользователя, логин:\nФИО: Петров П.П.\nЛогин: petrov\nТелефон: 55-00-00\nОписание ошибки: сбой",
        want: &[
            ("user.full_name", "Петров П.П."),
            ("user.login", "petrov"),
            ("error_text", "сбой"),
        ],
    },
];

fn check(case: &Case) -> Vec<String> {
    let parsed = parse_form(case.body, rules());
    let want = |key: &str| case.want.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut problems = Vec::new();
    for name in FormFields::NAMES {
        let got = parsed.fields.get(name);
        if got != want(name) {
            problems.push(format!(
                "{}: {name}: got {got:?}, want {:?}",
                case.name,
                want(name)
            ));
        }
    }
    for (key, got) in [
        ("impact", parsed.impact_raw.as_deref()),
        ("priority", parsed.priority_raw.as_deref()),
    ] {
        if got != want(key) {
            problems.push(format!(
                "{}: {key}: got {got:?}, want {:?}",
                case.name,
                want(key)
            ));
        }
    }
    if let Some(n) = want("labels") {
        let n: usize = n.parse().expect("labels is a number");
        if parsed.labels_found != n {
            problems.push(format!(
                "{}: labels_found: got {}, want {n}",
                case.name, parsed.labels_found
            ));
        }
    } else if !parsed.fields.is_empty() && parsed.labels_found == 0 {
        problems.push(format!("{}: fields found but labels_found = 0", case.name));
    }
    problems
}

#[test]
fn table_of_bodies() {
    assert!(CASES.len() >= 40, "only {} cases", CASES.len());
    let problems: Vec<String> = CASES.iter().flat_map(check).collect();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn case_names_are_unique() {
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len());
}

#[test]
fn phones_normalise() {
    let cases: &[(&str, Option<&str>)] = &[
        ("+7 978 123-45-67", Some("+79781234567")),
        ("8 (8692) 55-12-34", Some("+78692551234")),
        ("(8692) 55-12-34", Some("+78692551234")),
        ("+7(978)1234567", Some("+79781234567")),
        ("89781234567", Some("+79781234567")),
        ("8-978-123-45-67", Some("+79781234567")),
        ("7 978 123 45 67", Some("+79781234567")),
        ("55-12-34", Some("+78692551234")),
        ("551234", Some("+78692551234")),
        ("тел. 55-12-34", Some("+78692551234")),
        ("+7 (8692) 55-12-34 доб. 123", Some("+78692551234")),
        ("8 800 555-35-35", Some("+78005553535")),
        ("978 123 45 67", Some("+79781234567")),
        ("+380 692 55-12-34", None),
        ("12-34", None),
        ("0692 55 12 34", None),
        ("без телефона", None),
        ("", None),
        ("+", None),
        ("12345678901234567890", None),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_phone(input).as_deref(), *want, "{input:?}");
    }
    assert_eq!(
        normalize_phone_in("2-22-33", "84912").as_deref(),
        Some("+78491222233")
    );
}

#[test]
fn strip_quoted_returns_only_the_new_text() {
    let body = "Новый текст\r\nвторая строка\r\n\r\n> цитата\r\nещё\r\n\r\n-----Original Message-----\r\nFrom: x\r\nстарое";
    assert_eq!(
        strip_quoted(body, rules()),
        "Новый текст\nвторая строка\n\nещё"
    );
    // The applicant line is never taken for a header.
    let form = "Данные о заявителе: Иванова Т.А., ГБУЗС «ГБ №1», 55-12-34\nДата: 26.11.2026";
    assert_eq!(strip_quoted(form, rules()), form);
    // "От кого:" alone (no header lines after it) is kept.
    let from = "От кого: от регистратуры\nОшибка: сбой";
    assert_eq!(strip_quoted(from, rules()), from);
    // A step that says "пишет:" is not an attribution (no date, time or address).
    let step = "Шаги:\n3. Программа пишет:\n\"Ошибка сохранения\"";
    assert_eq!(strip_quoted(step, rules()), step);
    // Outlook header block in Russian.
    let outlook = "Спасибо\nОт: Иванова Т.А.\nОтправлено: 26 ноября 2026 г. 10:15\nКому: help@sevmiac.ru\nДанные о заявителе: x";
    assert_eq!(strip_quoted(outlook, rules()), "Спасибо");
    // Gmail "On … wrote:" over two lines.
    let gmail = "ok\nOn Thu, Nov 26, 2026 at 10:15 AM Ivanova <\nivanova@sev.gov.ru> wrote:\nold";
    assert_eq!(strip_quoted(gmail, rules()), "ok");
    // Mobile footers go, the text around them stays.
    let mobile = "Ошибка: сбой\nОтправлено с iPhone\nещё строка";
    assert_eq!(strip_quoted(mobile, rules()), "Ошибка: сбой\nещё строка");
}

#[test]
fn missing_fields_in_form_order() {
    let r = rules();
    let empty = FormFields::default();
    assert_eq!(
        missing_required(&empty, r),
        vec![
            "applicant.full_name",
            "applicant.organization",
            "applicant.phone",
            "steps",
            "error_text"
        ]
    );
    assert_eq!(
        missing_recommended(&empty, r),
        vec![
            "applicant.position",
            "user.full_name",
            "user.login",
            "patient.name",
            "patient.card"
        ]
    );
    let full = parse_form(FULL_TEXT_FORM, r).fields;
    assert!(missing_required(&full, r).is_empty());
    assert!(missing_recommended(&full, r).is_empty());

    let only_error = FormFields {
        error_text: Some("x".into()),
        applicant: Applicant {
            phone: Some("+78692551234".into()),
            ..Applicant::default()
        },
        ..FormFields::default()
    };
    assert_eq!(
        missing_required(&only_error, r),
        vec!["applicant.full_name", "applicant.organization"]
    );
}

#[test]
fn describe_gives_russian_words() {
    let r = rules();
    assert_eq!(
        r.describe("applicant.phone"),
        "контактный телефон заявителя"
    );
    for name in FormFields::NAMES {
        assert!(r.describe(name).chars().any(|c| ('а'..='я').contains(&c)));
    }
    assert_eq!(r.describe("no.such"), "no.such");
    assert_eq!(r.required().len(), 3);
    assert_eq!(r.recommended().len(), 5);
    assert_eq!(
        r.required_one_of(),
        &[vec!["steps".to_string(), "error_text".to_string()]]
    );
}

#[test]
fn shipped_rules_compile() {
    let raw: RawFormRules =
        toml::from_str(include_str!("../rules/form.toml")).expect("rules/form.toml parses");
    FormRules::compile(raw).expect("rules/form.toml compiles");
}

#[test]
fn rule_errors_name_the_key() {
    let base = include_str!("../rules/form.toml");
    let bad = |from: &str, to: &str| -> String {
        assert!(base.contains(from), "{from:?} not in the rules");
        let text = base.replacen(from, to, 1);
        FormRules::from_toml(&text).expect_err("must fail")
    };
    let e = bad(
        "required = [\"applicant.full_name\"",
        "required = [\"applicant.fullname\"",
    );
    assert!(e.starts_with("required:"), "{e}");
    let e = bad(
        "default_city_code = \"8692\"",
        "default_city_code = \"86a\"",
    );
    assert!(e.starts_with("default_city_code:"), "{e}");
    let e = bad("'^--$',", "'^--($',");
    assert!(e.starts_with("quote.cut_from:"), "{e}");
    let e = bad("impact = [", "impacts = [");
    assert!(e.starts_with("labels:"), "{e}");
    let e = bad(
        "\"steps\" = \"последовательность",
        "\"step\" = \"последовательность",
    );
    assert!(e.starts_with("descriptions:"), "{e}");
    let e = bad("within = 4", "within = 0");
    assert!(e.starts_with("quote.header_blocks:"), "{e}");
    let e = bad(
        "max_line_chars = 4000",
        "max_line_chars = 4000\nsurprise = 1",
    );
    assert!(e.contains("surprise"), "{e}");
}

#[test]
fn garbage_never_panics() {
    let r = rules();
    let mut inputs: Vec<String> = vec![
        String::new(),
        "\n\n\n".into(),
        "\r\r\r\n\r".into(),
        "│││││\n│\n─┼─\n│".into(),
        "──────┬──────\n│\n┴".into(),
        "Данные о заявителе │".into(),
        "Данные о заявителе:".into(),
        "Данные о заявителе: ,,,,;;;;".into(),
        "Данные о заявителе: +7".into(),
        "Данные о заявителе: «««»»»".into(),
        "Данные пациента: №".into(),
        "Пользователь: логин".into(),
        "ФИО пользователя, логин │ ФИО пользователя, логин │ ФИО:".into(),
        "Данные о заявителе │ Данные о заявителе │ Данные о заявителе │ x".into(),
        "\u{0}\u{1}\u{7f}\u{feff}\u{200b}\u{202e}Ошибка:\u{0} x".into(),
        "и\u{306}\u{306}е\u{308}\u{308}\u{308}".into(),
        "🙂🙃 Ошибка: 💥\n> > >\n-- \n".into(),
        "İ̇ ß ẞ ǅ ﬁ Σς Ошибка: ﬀ".into(),
        "\u{10ffff}\u{fffd}\u{e000}".into(),
        "1.\n2)\n*\n**\n•\n#\n- :\n".into(),
        "(((((((((((((((((((((((((((((((((((((((".into(),
        "Телефон: ".to_string() + &"9".repeat(5000),
        "Данные о заявителе: ".to_string() + &"Иванова, ".repeat(3000),
        "Данные пациента: ".to_string() + &"№ карты ".repeat(3000),
    ];
    // Pseudo-random bytes, decoded lossily, with label words sprinkled in.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..40 {
        let mut bytes = Vec::new();
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push((x >> 24) as u8);
        }
        let mut s = String::from_utf8_lossy(&bytes).into_owned();
        if round % 2 == 0 {
            s.insert_str(0, "Данные о заявителе: ");
        }
        inputs.push(s);
    }
    for input in &inputs {
        let p = parse_form(input, r);
        let _ = strip_quoted(input, r);
        let _ = missing_required(&p.fields, r);
        let _ = normalize_phone(input);
    }
}

fn assert_fast(name: &str, body: &str) {
    let start = Instant::now();
    let p = parse_form(body, rules());
    let _ = strip_quoted(body, rules());
    let took = start.elapsed();
    eprintln!("{name}: {took:?}");
    assert!(took < Duration::from_secs(2), "{name}: took {took:?}");
    let _ = p;
}

#[test]
fn one_megabyte_inputs_return_fast() {
    let mb = 1024 * 1024;
    let form = FULL_TEXT_FORM.to_string() + "\n";
    assert_fast("repeated forms", &form.repeat(mb / form.len() + 1));
    assert_fast("one huge line", &"Ошибка: ".repeat(mb / 14));
    assert_fast("newlines", &"\n".repeat(mb));
    assert_fast(
        "table lines",
        &"Данные о заявителе │ x │ y\n".repeat(mb / 40),
    );
    assert_fast(
        "wrapped table",
        &"────┬────\nДанн│Иван\nые о│ова,\n".repeat(mb / 50),
    );
    assert_fast("digits", &"1-2-3-4-5-6-7-8-9-0 ".repeat(mb / 20));
    assert_fast("quotes", &"> Данные о заявителе: x\n".repeat(mb / 40));
    assert_fast(
        "attribution lines",
        &"26.11.2026 10:15, x пишет:\n\n".repeat(mb / 30),
    );
    assert_fast("headers", &"От: x\nОт: y\n".repeat(mb / 12));
    assert_fast(
        "nested headings",
        &("Данные о заявителе │ ".repeat(200) + "x\n").repeat(mb / 4000),
    );
    assert_fast(
        "labels alone",
        &"Данные о заявителе\n\n\nИванова\nОписание ошибки\n".repeat(mb / 60),
    );
    assert_fast(
        "long applicant lines",
        &("Данные о заявителе: ".to_string()
            + &"Иванова Т.А., 55-12-34, «ГБ», ".repeat(100)
            + "\n")
            .repeat(mb / 3000),
    );
    // The first screenful is still read.
    let mut big = FULL_TEXT_FORM.to_string();
    big.push_str(&"\nпросто текст".repeat(mb / 24));
    let p = parse_form(&big, rules());
    assert_eq!(p.fields.applicant.phone.as_deref(), Some("+78692551234"));
}
