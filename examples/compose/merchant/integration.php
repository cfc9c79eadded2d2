<?php
// Stands in for a merchant integration that hard-codes the gateway, as a WordPress plugin
// does: nothing here knows about the shim. Every 10 seconds it asks H01 (global IP address
// inquiry) and prints returnCode and errorCode: 0 from the stand-in gateway, then 1 and
// Z01000000 from the shim during the drill's window, then 0 again.

const URL = 'https://api.kuronekoyamato.co.jp/api/';

while (true) {
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => "Content-Type: application/x-www-form-urlencoded\r\n",
        'content' => http_build_query(['function_div' => 'H01', 'trader_code' => '123456789']),
        'timeout' => 10,
        'ignore_errors' => true,
    ]]);
    $xml = @file_get_contents(URL . 'traderIp', false, $context);
    if ($xml === false) {
        // A certificate the container does not trust ends up here, as it would in production.
        $error = error_get_last();
        echo date('H:i:s'), ' transport failure: ', $error['message'] ?? 'unknown', PHP_EOL;
    } else {
        preg_match('#<returnCode>(.*?)</returnCode>#', $xml, $code);
        preg_match('#<errorCode>(.*?)</errorCode>#', $xml, $error);
        echo date('H:i:s'), ' returnCode=', $code[1] ?? '?', ' errorCode=', $error[1] ?? '', PHP_EOL;
    }
    sleep(10);
}
