import { useTranslation } from "react-i18next";
import { localeFor } from "../ui/format";

/** The Intl locale of the current language ("en-US" / "es-ES"). */
export function useLocale(): string {
  const { i18n } = useTranslation();
  return localeFor(i18n.language);
}
