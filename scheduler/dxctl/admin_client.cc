#include "scheduler/dxctl/admin_client.h"

#include <curl/curl.h>

namespace dx::ctl {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

AdminClient::AdminClient(std::string server, std::string token, std::string ca_file)
    : server_(std::move(server)), token_(std::move(token)), ca_file_(std::move(ca_file)) {
  while (!server_.empty() && server_.back() == '/') server_.pop_back();
}

std::string AdminClient::Escape(const std::string& text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<HttpReply> AdminClient::Get(const std::string& path) { return Call("GET", path, "", ""); }

Result<HttpReply> AdminClient::Post(const std::string& path, const std::string& body,
                                    const std::string& content_type) {
  return Call("POST", path, body, content_type);
}

Result<HttpReply> AdminClient::Delete(const std::string& path) {
  return Call("DELETE", path, "", "");
}

Result<HttpReply> AdminClient::Call(const std::string& method, const std::string& path,
                                    const std::string& body, const std::string& content_type) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Internal("cannot initialise libcurl");
  HttpReply reply;
  std::string url = server_ + path;
  curl_slist* headers = nullptr;
  std::string auth = "Authorization: Bearer " + token_;
  headers = curl_slist_append(headers, auth.c_str());
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  // https: the scheduler's certificate and name are verified, against ca_file when given.
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file_.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file_.c_str());
  if (method == "DELETE") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Unavailable("cannot reach the scheduler at " + server_ + ": " + curl_easy_strerror(rc));
  }
  return reply;
}

}  // namespace dx::ctl
